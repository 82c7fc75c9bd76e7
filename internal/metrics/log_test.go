package metrics_test

import "github.com/rs/zerolog"

func testLogger() zerolog.Logger { return zerolog.Nop() }
