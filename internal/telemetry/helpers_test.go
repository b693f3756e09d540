package telemetry

import (
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

type lockedBuffer = syncbuf.Buffer
