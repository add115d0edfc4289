package intune

import (
	// The file cache (fileCache) the state and checkpoint tests keep their
	// entries in.
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	// Benthos' core components (the none tracer and metrics, Bloblang's
	// standard methods used by our lint rules) live in the pure package,
	// which every distribution imports.
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
)
