package dbconn

import (
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"
)

// RouteDriverLog sends the MySQL driver's own messages ("unexpected EOF",
// "closing bad idle connection", ...) to log as warnings instead of the
// driver's default: plain lines on stderr with the driver's file:line,
// outside the structured log that operators collect. The driver has one
// logger per process, so this is process-wide; the messages name no DSN,
// password or query data.
func RouteDriverLog(log zerolog.Logger) {
	driverLog := log.With().Str("component", "mysql-driver").Logger()
	// SetLogger fails only for a nil logger.
	_ = mysql.SetLogger(driverLogger{driverLog})
}

type driverLogger struct{ log zerolog.Logger }

func (d driverLogger) Print(v ...any) { d.log.Warn().Msg(fmt.Sprint(v...)) }
