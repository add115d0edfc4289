package intune

import (
	"errors"
	"fmt"
	"strings"

	"github.com/benthosdev/benthos/v4/public/bloblang"
	"github.com/benthosdev/benthos/v4/public/service"

	// The rules call Bloblang methods that Benthos' pure components
	// register (parse_duration). Importing them here makes them registered
	// before this package's rules are compiled, whatever else the program
	// imports.
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
)

// rule is one check of a config value, written once, in Bloblang. Benthos
// runs it as the field's lint rule (`intune-benthos lint`, and before every
// run of a config file); check runs the same mapping on the parsed value
// when the input is built, so that a config that was never linted (a
// StreamBuilder, a resource added at run time) fails with the same words.
type rule struct {
	// path is the field checked; empty for a rule over the whole input.
	path []string
	// mapping sets root to the list of what is wrong, empty or deleted
	// when the value is fine: the form Benthos reads lint rules in.
	mapping string
	exec    *bloblang.Executor
}

// lintEnv is the environment Benthos parses lint rules in
// (internal/docs.FieldSpec.LinterBlobl): pure functions only.
var lintEnv = bloblang.NewEnvironment().OnlyPure()

// newRule compiles mapping at start-up: a rule that does not parse is a
// bug, and every rule is exercised by the tests.
func newRule(mapping string, path ...string) *rule {
	exec, err := lintEnv.Parse(mapping)
	if err != nil {
		panic(fmt.Sprintf("lint rule of %q: %v", strings.Join(path, "."), err))
	}
	return &rule{path: path, mapping: mapping, exec: exec}
}

// check runs the rule on the parsed value. An optional field left out is
// not checked, as lint does not check it either.
func (r *rule) check(conf *service.ParsedConfig) error {
	if len(r.path) > 0 && !conf.Contains(r.path...) {
		return nil
	}
	value, err := conf.FieldAny(r.path...)
	if err != nil {
		return err
	}
	value = asYAMLValue(value)
	problems, err := r.run(value)
	if err != nil {
		return err
	}
	// Benthos lints a list field as a whole and item by item.
	if items, ok := value.([]any); ok {
		for _, item := range items {
			more, err := r.run(item)
			if err != nil {
				return err
			}
			problems = append(problems, more...)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// run is the rule's mapping on one value, as Benthos runs a lint rule.
func (r *rule) run(value any) ([]string, error) {
	var res any
	if err := r.exec.Overlay(value, &res); err != nil {
		if errors.Is(err, bloblang.ErrRootDeleted) {
			return nil, nil
		}
		return nil, fmt.Errorf("checking %s: %w", strings.Join(r.path, "."), err)
	}
	return lintMessages(res), nil
}

// asYAMLValue gives a parsed value the types lint sees, those of a decoded
// YAML document: a default such as []string{} is []any there.
func asYAMLValue(v any) any {
	switch v := v.(type) {
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = asYAMLValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = asYAMLValue(e)
		}
		return out
	}
	return v
}

// lintMessages reads a lint rule's result as Benthos does (docs.lintsFromAny):
// a string or a list of strings, each one problem.
func lintMessages(res any) []string {
	switch v := res.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// checkAll runs rules in order and returns the first problem found.
func checkAll(conf *service.ParsedConfig, rules ...*rule) error {
	for _, r := range rules {
		if err := r.check(conf); err != nil {
			return err
		}
	}
	return nil
}

// oneOfRule accepts only the given values, naming the field. Benthos' own
// enum fields are not used: their message does not name the field, and
// v4.27 reads an option such as "v1.0" as a path.
func oneOfRule(values []string, path ...string) *rule {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return newRule(fmt.Sprintf(`root = if ![%s].contains(this) { [ "%s must be one of %s, got %%v".format(this) ] }`,
		strings.Join(quoted, ", "), strings.Join(path, "."), strings.Join(values, ", ")), path...)
}

// durationsNotNegativeRule checks the durations of an object field: each
// must parse and not be negative.
func durationsNotNegativeRule(object string, fields ...string) *rule {
	var checks []string
	for _, f := range fields {
		checks = append(checks, fmt.Sprintf(
			`if this.%[1]s.or("0s").parse_duration().catch(-1) < 0 { "%[2]s.%[1]s must be a duration that is not negative, such as 2s, got %%v".format(this.%[1]s) }`,
			f, object))
	}
	return newRule("root = [ "+strings.Join(checks, ", ")+" ].filter(v -> v != null)", object)
}
