package intune

import (
	"context"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// Kafka's log compaction drops a key when its latest record has a null
// value (a tombstone). Benthos' kafka_franz output sends the message body as
// the value, and no Bloblang mapping can make a body null rather than empty,
// so the distribution carries this small processor for config/kafka.yaml.
func init() {
	spec := service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Gives each deletion emitted by `intune_managed_devices` (metadata `intune_operation: delete`) a null body, so that `kafka_franz` sends a Kafka tombstone for its key.").
		Field(service.NewStringField("operation").
			Description("The `intune_operation` value whose messages become tombstones.").
			Default(contract.OpDelete).
			Advanced())
	err := service.RegisterProcessor("intune_kafka_tombstones", spec,
		func(conf *service.ParsedConfig, _ *service.Resources) (service.Processor, error) {
			op, err := conf.FieldString("operation")
			if err != nil {
				return nil, err
			}
			return tombstoneProcessor{operation: op}, nil
		})
	if err != nil {
		panic(err)
	}
}

type tombstoneProcessor struct{ operation string }

func (p tombstoneProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	if op, ok := msg.MetaGet(contract.Operation); ok && op == p.operation {
		msg.SetBytes(nil)
	}
	return service.MessageBatch{msg}, nil
}

func (tombstoneProcessor) Close(context.Context) error { return nil }
