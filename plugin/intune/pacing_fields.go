package intune

import (
	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// The pacing fields: how fast an input may send requests, shared by every
// input that sends many (the software inventory's join, the devices'
// details), so that both read and are checked alike.
const (
	fieldMaxConcurrency    = "max_concurrency"
	fieldRequestsPerSecond = "max_requests_per_second"
)

// intuneRequestsPerSecond is Intune's documented budget for its devices
// service, 2,000 requests per 20 seconds per app per tenant (Microsoft
// Graph throttling limits, "Intune service limits").
const intuneRequestsPerSecond = 100

// The pacing rules (see rule).
var (
	maxConcurrencyRule    = newRule(`root = if this < 1 || this > 256 { [ "max_concurrency must be between 1 and 256, got %v".format(this) ] }`, fieldMaxConcurrency)
	requestsPerSecondRule = newRule(`root = if this <= 0 { [ "max_requests_per_second must be a positive number, got %v".format(this) ] }`, fieldRequestsPerSecond)
)

func maxConcurrencyField(what string) *service.ConfigField {
	return service.NewIntField(fieldMaxConcurrency).
		Description("The most requests in flight at once" + what + ". The input starts with a quarter of it and grows while Graph answers.").
		Default(16).
		LintRule(maxConcurrencyRule.mapping).
		Advanced()
}

func requestsPerSecondField() *service.ConfigField {
	return service.NewFloatField(fieldRequestsPerSecond).
		Description("The pace of requests: Intune allows an app 2,000 requests per 20 seconds in a tenant. Lower it when other tools share the app registration.").
		Default(float64(intuneRequestsPerSecond)).
		LintRule(requestsPerSecondRule.mapping).
		Advanced()
}

// pacing is the parsed pacing fields.
type pacing struct {
	maxConcurrency    int
	requestsPerSecond float64
}

func (p *pacing) parse(conf *service.ParsedConfig) error {
	var err error
	if p.maxConcurrency, err = conf.FieldInt(fieldMaxConcurrency); err != nil {
		return err
	}
	p.requestsPerSecond, err = conf.FieldFloat(fieldRequestsPerSecond)
	return err
}

// throttle is the app's share of Graph's budget that every request of the
// input goes through.
func (p pacing) throttle() *graph.Throttle {
	return graph.NewThrottle(p.requestsPerSecond, p.maxConcurrency)
}
