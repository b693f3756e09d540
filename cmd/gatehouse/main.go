// Command gatehouse is the Gatehouse API gateway.
//
//	gatehouse run -c gatehouse.yaml        serve a config (reloads on SIGHUP and on file change)
//	gatehouse validate -c gatehouse.yaml   check a config; prints file:line:col: field: message
//	gatehouse demo                         serve the built-in demo config and demo services
//	gatehouse token -sub 1 -perm users:read  print a JWT for local testing (demo issuer by default)
//	gatehouse hash-key <key>               print the hash to store for an API key
//	gatehouse version                      print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/demo"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gctune"
	"github.com/gatehouse/gatehouse/internal/provider"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/redis/go-redis/v9"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Gatehouse — an API gateway in one binary.

Usage:
  gatehouse run -c gatehouse.yaml       serve a config (reload: SIGHUP or edit the file)
  gatehouse validate -c gatehouse.yaml  check a config and print every problem
  gatehouse demo [-listen :8080]        run the built-in demo (no setup needed)
  gatehouse token [-sub 1] [-perm p]... print a test JWT (signed for the demo issuer by default)
  gatehouse hash-key <key>|-|-generate  print the hash to store in auth.consumers[].keys
  gatehouse version                     print the version

Run "gatehouse <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// go-redis prints every failed dial of an outage to stderr; the stores already log outages
	// (rate-limited) with context, so its own lines go to debug.
	redis.SetLogger(redisLogger{})
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "token":
		return cmdToken(args[1:], stdout, stderr)
	case "hash-key":
		return cmdHashKey(args[1:], os.Stdin, stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintf(stdout, "gatehouse %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// newLogger builds the process logger (JSON on w) with an adjustable level, which also
// becomes slog's default so libraries' debug lines end up in the same stream.
func newLogger(w io.Writer, level string) (*slog.Logger, *slog.LevelVar, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("invalid log level %q (debug, info, warn, error)", level)
	}
	lv := new(slog.LevelVar)
	lv.Set(l)
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(logger)
	return logger, lv, nil
}

// parseFlags parses a command's flags and refuses arguments it takes none of. It returns -1 to
// go on, or the exit code: 0 after -h (help asked for is not a usage error, as with
// "gatehouse -h"), 2 after a usage error. A stray argument is an error rather than ignored:
// "gatehouse validate gatehouse.yaml" (without -c) would otherwise check the default file.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "gatehouse %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2
	}
	return -1
}

// flagExit is the exit code after fs.Parse fails: 0 when -h asked for the usage it printed.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "gatehouse.yaml", "config file")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.LoadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		var es config.Errors
		if errors.As(err, &es) {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", *path, len(es))
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d listeners, %d services, %d routes)\n", *path, len(cfg.Listeners), len(cfg.Services), len(cfg.Routes))
	return 0
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	// Caught first: until signal.Notify, a SIGHUP takes Go's default action and kills the process,
	// and a config-reloader sidecar may send one while the config is still loading or compiling.
	sigs := notifySignals()
	defer signal.Stop(sigs)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "gatehouse.yaml", "config file")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	watch := fs.Bool("watch", true, "reload when the config file changes")
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile to `file` from start until shutdown (for performance work; off by default)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse:", err)
			return 1
		}
		defer stop()
	}
	logger, levelVar, err := newLogger(stderr, *level)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, err := config.LoadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv, err := server.New(cfg, server.Options{ConfigPath: *path, Logger: logger, LogLevel: levelVar, Version: version})
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return serve(srv, logger, *path, *watch, sigs, nil)
}

// notifySignals starts catching the signals serve handles. The buffer keeps those that arrive
// before serve reads them; more than fit are dropped, which only merges repeated SIGHUPs.
func notifySignals() chan os.Signal {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	return sigs
}

// startCPUProfile starts a pprof CPU profile written to path; the returned function stops it
// and closes the file (the profile is complete only after it ran, i.e. after a clean shutdown).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// serve starts srv and blocks until SIGTERM/SIGINT on sigs, reloading on SIGHUP (and on file
// change when watch is set). ready, if not nil, runs once the listeners are bound.
//
// Signals caught before serve (while the config loaded and compiled) wait in sigs and are handled
// in order once srv is serving: a SIGHUP reloads the file, which may have changed since it was
// read, and a SIGTERM/SIGINT shuts down gracefully. Handling them only once serving keeps one
// code path for each; the cost is that a SIGTERM during a slow compile (JWKS fetches) waits for
// it and binds the listeners for a moment before draining them.
func serve(srv *server.Server, logger *slog.Logger, path string, watch bool, sigs <-chan os.Signal, ready func()) int {
	if err := srv.Start(); err != nil {
		logger.Error("start failed", "error", err.Error())
		return 1
	}
	defer gctune.Start()()
	if ready != nil {
		ready()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := func() {
		if err := srv.ReloadFile(); err != nil {
			logger.Error("reload failed", "error", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if watch && path != "" {
		if err := provider.WatchFile(ctx, path, 300*time.Millisecond, logger, reload); err != nil {
			logger.Warn("config file watch unavailable; reload with SIGHUP", "error", err.Error())
		}
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if path != "" {
				logger.Info("SIGHUP: reloading config", "file", path)
				reload()
			}
			continue
		}
		logger.Info("shutting down: draining in-flight requests", "signal", sig.String())
		if err := srv.Shutdown(context.Background()); err != nil {
			logger.Error("shutdown", "error", err.Error())
			return 1
		}
		logger.Info("stopped")
		return 0
	}
	return 0
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	// As in cmdRun: a SIGHUP while the demo services start must not kill the process.
	sigs := notifySignals()
	defer signal.Stop(sigs)
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "admin API and dashboard address (\"off\" for none)")
	bffListen := fs.String("bff-listen", "127.0.0.1:8090", "address of the Backends-for-Frontends demo gateway (\"off\" to skip it)")
	bffMobile := fs.String("bff-mobile", "127.0.0.1:8091", "the BFF demo's mobile-only listener")
	bffWeb := fs.String("bff-web", "127.0.0.1:8092", "the BFF demo's web-only listener")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	logger, levelVar, err := newLogger(stderr, *level)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	d, err := demo.Start()
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse demo:", err)
		return 1
	}
	defer d.Close()
	if *adminAddr == "off" {
		*adminAddr = ""
	}
	cfg, err := d.Config(*listen, *adminAddr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse demo:", err)
		return 1
	}
	srv, err := server.New(cfg, server.Options{Logger: logger, LogLevel: levelVar, Version: version})
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse demo:", err)
		return 1
	}

	// The BFF demo (aggregation, per-client shaping) is a second gateway from its own embedded
	// config: it shows the "one gateway per client type" pattern with its mobile/web listeners.
	var bffSrv *server.Server
	if *bffListen != "off" {
		b, err := demo.StartBFF()
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse demo:", err)
			return 1
		}
		defer b.Close()
		bcfg, err := b.Config(*bffListen, *bffMobile, *bffWeb)
		if err == nil {
			bffSrv, err = server.New(bcfg, server.Options{Logger: logger.With("gateway", "bff")})
		}
		if err == nil {
			err = bffSrv.Start()
		}
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse demo (BFF):", err)
			return 1
		}
		defer func() { _ = bffSrv.Shutdown(context.Background()) }()
	}
	return serve(srv, logger, "", false, sigs, func() {
		fmt.Fprint(stdout, d.Banner(srv.Addrs()["public"]))
		if *adminAddr != "" {
			fmt.Fprintf(stdout, "\nDashboard: http://%s/   Prometheus metrics: http://%s/metrics   Admin API: http://%s/api/v1/\n", *adminAddr, *adminAddr, *adminAddr)
		}
		if bffSrv != nil {
			a := bffSrv.Addrs()
			fmt.Fprint(stdout, demo.BFFBanner(a["public"], a["mobile"], a["web"]))
		}
	})
}

// redisLogger sends go-redis's internal messages to slog at debug level.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
