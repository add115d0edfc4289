package intune

import (
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// inputConfig is the parsed, validated configuration of the input.
type inputConfig struct {
	graphAccess
	pacing
	query    graph.Query
	interval time.Duration
	details  detailsConfig

	checkpointCache string

	emitChanges      bool
	stateCache       string
	ignoreProperties []string
	syncMarkers      bool
}

// parseInputConfig checks every rule, then reads the fields group by group.
// The rules come first: a value a rule refuses gets the rule's words, the
// same as lint's.
func parseInputConfig(conf *service.ParsedConfig) (inputConfig, error) {
	var c inputConfig
	if err := checkAll(conf, inputRules()...); err != nil {
		return c, err
	}
	for _, parse := range []func(*service.ParsedConfig) error{
		c.graphAccess.parse,
		c.parseQuery,
		c.pacing.parse,
		c.parseDetails,
		c.parseChanges,
	} {
		if err := parse(conf); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseQuery reads what is listed and how often.
func (c *inputConfig) parseQuery(conf *service.ParsedConfig) error {
	var err error
	if c.query.APIVersion, err = conf.FieldString(fieldAPIVersion); err != nil {
		return err
	}
	if c.query.Select, err = conf.FieldStringList(fieldSelect); err != nil {
		return err
	}
	if c.query.Filter, err = conf.FieldString(fieldFilter); err != nil {
		return err
	}
	if c.query.Top, err = conf.FieldInt(fieldPageSize); err != nil {
		return err
	}
	c.interval, err = intervalField(conf)
	return err
}

// intervalField reads interval: 0 when empty, for one sync.
func intervalField(conf *service.ParsedConfig) (time.Duration, error) {
	interval, err := conf.FieldString(fieldInterval)
	if err != nil || interval == "" {
		return 0, err
	}
	// intervalRule has checked it parses.
	return time.ParseDuration(interval)
}

// parseDetails reads the details object, which depends on what is listed.
func (c *inputConfig) parseDetails(conf *service.ParsedConfig) error {
	var err error
	c.details, err = parseDetails(conf, c.query.APIVersion, c.query.Select)
	return err
}

// parseChanges reads the fields that say what a sync keeps between runs:
// the checkpoint and the change state.
func (c *inputConfig) parseChanges(conf *service.ParsedConfig) error {
	var err error
	if c.checkpointCache, err = conf.FieldString(fieldCheckpointCache); err != nil {
		return err
	}
	emit, err := conf.FieldString(fieldEmit)
	if err != nil {
		return err
	}
	c.emitChanges = emit == "changes"
	if c.stateCache, err = conf.FieldString(fieldStateCache); err != nil {
		return err
	}
	if c.ignoreProperties, err = conf.FieldStringList(fieldIgnoreProperties); err != nil {
		return err
	}
	c.syncMarkers, err = conf.FieldBool(fieldSyncMarkers)
	return err
}
