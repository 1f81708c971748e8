package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// cluster is one supervised control plane.
type cluster struct {
	dir        string
	etcdClient string
	etcdPeer   string
	apiPort    int
	token      string
	self       string
	etcd       *exec.Cmd
	api        *exec.Cmd
	mu         sync.Mutex
}

func runStart(args []string) error {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	dir := fs.String("dir", "", "working directory (created; holds certs, data, logs, kubeconfig)")
	watchStdin := fs.Bool("watch-stdin", false, "stop when standard input closes")
	timeout := fs.Duration("timeout", 120*time.Second, "how long to wait for readiness")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c := &cluster{dir: abs, self: self}
	if err := c.prepare(); err != nil {
		return err
	}

	stop := make(chan os.Signal, 4)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	restart := make(chan os.Signal, 1)
	signal.Notify(restart, syscall.SIGUSR1)
	stdinClosed := make(chan struct{})
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
	}

	if err := c.startEtcd(*timeout); err != nil {
		c.shutdown()
		return err
	}
	if err := c.startAPIServer(*timeout); err != nil {
		c.shutdown()
		return err
	}
	kubeconfig := filepath.Join(abs, "kubeconfig")
	fmt.Printf("READY %s\n", kubeconfig)
	_ = os.Stdout.Sync()

	for {
		select {
		case <-stop:
			c.shutdown()
			return nil
		case <-stdinClosed:
			c.shutdown()
			return nil
		case <-restart:
			c.stopAPIServer()
			if err := c.startAPIServer(*timeout); err != nil {
				fmt.Fprintf(os.Stderr, "testcluster: restart failed: %v\n", err)
				c.shutdown()
				return err
			}
			fmt.Printf("RESTARTED %s\n", kubeconfig)
			_ = os.Stdout.Sync()
		}
	}
}

// prepare writes the PKI, the token file and the kubeconfig, and picks ports.
func (c *cluster) prepare() error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	c.etcdClient = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	c.etcdPeer = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.apiPort = ports[2]
	pki, err := generatePKI(filepath.Join(c.dir, "pki"))
	if err != nil {
		return err
	}
	c.token = pki.token
	tokenFile := filepath.Join(c.dir, "pki", "tokens.csv")
	line := fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n", pki.token)
	if err := os.WriteFile(tokenFile, []byte(line), 0o600); err != nil {
		return err
	}
	return writeKubeconfig(filepath.Join(c.dir, "kubeconfig"), c.server(), pki.caPEM, pki.token)
}

func (c *cluster) server() string {
	return "https://127.0.0.1:" + strconv.Itoa(c.apiPort)
}

func (c *cluster) spawn(name string, args ...string) (*exec.Cmd, error) {
	logPath := filepath.Join(c.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.self, append([]string{name}, args...)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If this supervisor dies for any reason, the kernel kills its servers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { _ = cmd.Wait(); logFile.Close() }()
	return cmd, nil
}

func (c *cluster) startEtcd(timeout time.Duration) error {
	cmd, err := c.spawn("etcd",
		"--data-dir", filepath.Join(c.dir, "etcd-data"),
		"--listen-client", c.etcdClient,
		"--listen-peer", c.etcdPeer)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.etcd = cmd
	c.mu.Unlock()
	return waitFor(timeout, "etcd", filepath.Join(c.dir, "etcd.log"), func() error {
		resp, err := http.Get(c.etcdClient + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health %d", resp.StatusCode)
		}
		return nil
	})
}

func (c *cluster) startAPIServer(timeout time.Duration) error {
	pki := filepath.Join(c.dir, "pki")
	cmd, err := c.spawn("apiserver",
		"--etcd-servers", c.etcdClient,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.apiPort),
		"--cert-dir", pki,
		"--tls-cert-file", filepath.Join(pki, "serving.crt"),
		"--tls-private-key-file", filepath.Join(pki, "serving.key"),
		"--client-ca-file", filepath.Join(pki, "ca.crt"),
		"--token-auth-file", filepath.Join(pki, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-key-file", filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(pki, "sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--allow-privileged=true",
		"--disable-admission-plugins", "ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v", "0",
	)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.api = cmd
	c.mu.Unlock()
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	return waitFor(timeout, "kube-apiserver", filepath.Join(c.dir, "apiserver.log"), func() error {
		if cmd.ProcessState != nil {
			return errors.New("exited")
		}
		req, _ := http.NewRequestWithContext(context.Background(), "GET", c.server()+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

func (c *cluster) stopAPIServer() {
	c.mu.Lock()
	api := c.api
	c.api = nil
	c.mu.Unlock()
	terminate(api)
}

func (c *cluster) shutdown() {
	c.stopAPIServer()
	c.mu.Lock()
	etcd := c.etcd
	c.etcd = nil
	c.mu.Unlock()
	terminate(etcd)
}

// terminate asks a server to stop, then kills it after a grace period.
func terminate(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		// The process is reaped by the goroutine started in spawn; polling
		// with signal 0 tells when it is gone.
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

func waitFor(timeout time.Duration, what, logPath string, probe func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = probe(); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (last: %v); its log:\n%s", what, timeout, last, tail(logPath, 40))
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1024*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
