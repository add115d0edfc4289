package graphsim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ExtraProperty is a top-level property graphsim adds to every device after
// Graph's own: a property Microsoft may add tomorrow, for testing that a
// pipeline keeps what its table has no column for. Value is raw JSON, in
// which {index} stands for the device's index, so that values differ
// between devices.
type ExtraProperty struct {
	Name  string
	Value string
	// Devices, when set, are the only devices that carry it (by index);
	// the others keep Graph's own value of that name, or null.
	Devices []int
}

// ParseExtraProperty reads name=<raw JSON>, as the -extra-property flag
// takes it.
func ParseExtraProperty(s string) (ExtraProperty, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return ExtraProperty{}, fmt.Errorf("extra property %q: want name=<JSON value>", s)
	}
	p := ExtraProperty{Name: name, Value: value}
	return p, p.validate()
}

func (p ExtraProperty) validate() error {
	if !json.Valid([]byte(p.render(0))) {
		return fmt.Errorf("extra property %s: %q is not a JSON value", p.Name, p.Value)
	}
	return nil
}

func (p ExtraProperty) render(index int) string {
	return strings.ReplaceAll(p.Value, "{index}", strconv.Itoa(index))
}

// withExtras returns props followed by the extra properties. An extra
// property with the name of one of props (hardwareInformation in beta)
// takes its place instead, so that no key is written twice; its value is
// then what lists and single-device GETs alike show, and the devices it
// leaves out keep Graph's own, a list-default property's real value
// included.
func withExtras(props []property, extras []ExtraProperty) []property {
	if len(extras) == 0 {
		return props
	}
	out := append([]property(nil), props...)
	for _, e := range extras {
		e := e
		k := findProperty(out, e.Name)
		if k >= 0 && out[k].name != e.Name {
			k = -1
		}
		only := map[int]bool{}
		for _, i := range e.Devices {
			only[i] = true
		}
		value := func(own func(b []byte, d *device) []byte) func(b []byte, d *device) []byte {
			return func(b []byte, d *device) []byte {
				if len(only) > 0 && !only[d.index] {
					if own != nil {
						return own(b, d)
					}
					return append(b, "null"...)
				}
				return append(b, e.render(d.index)...)
			}
		}
		var p property
		switch {
		case k < 0:
			p = prop(e.Name, value(nil))
		case out[k].listDefault:
			p = listDefault(e.Name, value(out[k].write), value(out[k].real))
		default:
			p = prop(e.Name, value(out[k].write))
		}
		if k >= 0 {
			out[k] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}
