// flux-supervise runs one of Flux's controllers for quayside's tests and
// makes sure it never outlives the test that started it.
//
//	flux-supervise [--grace 10s] -- PROGRAM ARGS...
//
// Flux's controllers have no notion of "my parent went away": started
// directly by a test binary that then dies (a panic abort, SIGKILL), they
// would keep running and reconciling against a control plane that is gone.
// So the test starts this instead, with a pipe as standard input that only
// the test holds. When that pipe closes — a normal exit, a panic or SIGKILL
// of the test alike — or on SIGINT/SIGTERM, the controller gets SIGTERM,
// and SIGKILL after the grace period. The controller also carries a
// parent-death signal, so killing this supervisor kills it too. When the
// controller exits by itself, this exits with its status.
//
// The controllers themselves are built from their modules by scripts/setup
// (`go build github.com/fluxcd/source-controller` in this module), which is
// why this module requires them as tools.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func init() {
	// The parent-death signal is tied to the thread that forks the child:
	// keep the main goroutine on the main thread, which lives as long as
	// this process does.
	runtime.LockOSThread()
}

func main() {
	grace := flag.Duration("grace", 10*time.Second, "how long the controller may take to stop after SIGTERM")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: flux-supervise [--grace 10s] -- PROGRAM ARGS...")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(supervise(flag.Args(), *grace))
}

func supervise(argv []string, grace time.Duration) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil // /dev/null: standard input is the test's lifeline, not the controller's
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "flux-supervise: starting %s: %v\n", argv[0], err)
		return 127
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()

	select {
	case err := <-exited:
		return status(err)
	case <-stop:
	case <-stdinClosed:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return status(err)
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "flux-supervise: %s did not stop within %s; killing it\n", argv[0], grace)
		_ = cmd.Process.Kill()
		return status(<-exited)
	}
}

func status(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.ExitCode() >= 0 {
			return exit.ExitCode()
		}
		return 1 // killed by a signal
	default:
		fmt.Fprintf(os.Stderr, "flux-supervise: %v\n", err)
		return 1
	}
}
