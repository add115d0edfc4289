package intune

// Benthos' core components (the none tracer and metrics, Bloblang's
// standard methods used by our lint rules) live in the pure package, which
// every distribution imports.
import _ "github.com/benthosdev/benthos/v4/public/components/pure"
