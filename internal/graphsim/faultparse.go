package graphsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseFault reads a fault written as comma-separated key=value pairs, the
// syntax of graphsim's -fault flag:
//
//	page=2,attempt=1,kind=429,retry_after=1.5
//	kind=slow,delay=3s
//	page=3,kind=503,retry_after=Wed, 21 Oct 2026 07:28:00 GMT
//	resource=deviceComplianceDeviceStatuses,page=2,kind=500
//
// Keys are page, attempt, kind, retry_after, delay (a Go duration) and
// resource (Fault.Resource). A piece without "=" continues the previous
// value, so an HTTP-date keeps its comma. Omitted page and attempt mean
// every page and every attempt, an omitted resource managedDevices.
func ParseFault(s string) (Fault, error) {
	var f Fault
	var keys []string
	values := map[string]string{}
	for _, piece := range strings.Split(s, ",") {
		if strings.TrimSpace(piece) == "" {
			continue
		}
		k, v, ok := strings.Cut(piece, "=")
		if !ok {
			if len(keys) == 0 {
				return f, fmt.Errorf("fault %q: %q is not key=value", s, piece)
			}
			last := keys[len(keys)-1]
			values[last] += "," + piece
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := values[k]; dup {
			return f, fmt.Errorf("fault %q: key %q given twice", s, k)
		}
		keys = append(keys, k)
		values[k] = v
	}
	for _, k := range keys {
		v := strings.TrimSpace(values[k])
		var err error
		switch k {
		case "page":
			f.Page, err = faultCount(v)
		case "attempt":
			f.Attempt, err = faultCount(v)
		case "kind":
			f.Kind = FaultKind(strings.ToLower(v))
		case "retry_after":
			f.RetryAfter = v
		case "delay":
			f.Delay, err = time.ParseDuration(v)
		case "resource":
			f.Resource = v
		default:
			return f, fmt.Errorf("fault %q: unknown key %q (want page, attempt, kind, retry_after, delay or resource)", s, k)
		}
		if err != nil {
			return f, fmt.Errorf("fault %q: bad %s %q: %v", s, k, v, err)
		}
	}
	if f.Kind == "" {
		return f, fmt.Errorf("fault %q: no kind (want kind=one of %s)", s, kindList())
	}
	if err := f.Validate(); err != nil {
		return f, fmt.Errorf("fault %q: %v", s, err)
	}
	return f, nil
}

func faultCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a non-negative integer")
	}
	return n, nil
}

// faultJSON is a Fault as the admin endpoint and MarshalJSON write it, with
// the delay as a Go duration string.
type faultJSON struct {
	Page       int       `json:"page,omitempty"`
	Attempt    int       `json:"attempt,omitempty"`
	Kind       FaultKind `json:"kind"`
	RetryAfter string    `json:"retry_after,omitempty"`
	Delay      string    `json:"delay,omitempty"`
	Resource   string    `json:"resource,omitempty"`
}

// MarshalJSON writes f as POST /_graphsim/faults reads it:
// {"page":2,"attempt":1,"kind":"slow","delay":"1.5s"}, with
// "resource":"mobileApps" for a listing of intune.go.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Page: f.Page, Attempt: f.Attempt, Kind: f.Kind, RetryAfter: f.RetryAfter, Resource: f.Resource}
	if f.Delay != 0 {
		j.Delay = f.Delay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes, refusing unknown fields and
// invalid faults.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault %s: %v", b, err)
	}
	v := Fault{Page: j.Page, Attempt: j.Attempt, Kind: j.Kind, RetryAfter: j.RetryAfter, Resource: j.Resource}
	if j.Delay != "" {
		d, err := time.ParseDuration(j.Delay)
		if err != nil {
			return fmt.Errorf("fault %s: bad delay %q: %v", b, j.Delay, err)
		}
		v.Delay = d
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("fault %s: %v", b, err)
	}
	*f = v
	return nil
}
