package telemetry

import (
	"testing"

	"go.uber.org/goleak"
)

// The buffered writer and the span exporters start goroutines; every test must stop them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
