package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// runGitServer serves the bare repositories under --root with the real
// `git http-backend` (CGI) behind HTTP basic auth, plus a small pull-request
// API in the shape GitHub, Gitea and Forgejo share, for quayside's tests.
//
// Repositories named in --public can be read anonymously; everything else,
// and every push, needs the user and password. Pull-request calls need
// `Authorization: token <password>` or `Bearer <password>`.
func runGitServer(args []string) error {
	fs := flag.NewFlagSet("gitserver", flag.ContinueOnError)
	root := fs.String("root", "", "folder holding NAME.git bare repositories")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	user := fs.String("user", "quayside", "basic-auth user")
	password := fs.String("password", "", "basic-auth password (required)")
	public := fs.String("public", "", "comma-separated repositories (NAME.git) readable without auth")
	watchStdin := fs.Bool("watch-stdin", false, "stop when standard input closes")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *password == "" {
		return fmt.Errorf("--root and --password are required")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return fmt.Errorf("git --exec-path: %w", err)
	}
	backendPath := path.Join(strings.TrimSpace(string(backend)), "git-http-backend")
	publicSet := map[string]bool{}
	for _, p := range strings.Split(*public, ",") {
		if p = strings.TrimSpace(p); p != "" {
			publicSet[p] = true
		}
	}
	forge := &forge{pulls: map[string][]*pull{}, root: *root}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable: %w", err)
	}
	srv := &gitServer{root: *root, user: *user, password: *password, public: publicSet, backend: backendPath, self: self, forge: forge}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("READY %s://%s\n", scheme, l.Addr().String())
	_ = os.Stdout.Sync()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		stdinClosed := make(chan struct{})
		if *watchStdin {
			go func() {
				_, _ = io.Copy(io.Discard, os.Stdin)
				close(stdinClosed)
			}()
		}
		select {
		case <-sig:
		case <-stdinClosed:
		}
		l.Close()
	}()
	if *tlsCert != "" {
		err = http.ServeTLS(l, srv, *tlsCert, *tlsKey)
	} else {
		err = http.Serve(l, srv)
	}
	if strings.Contains(fmt.Sprint(err), "use of closed network connection") {
		return nil
	}
	return err
}

type gitServer struct {
	root, user, password, backend string
	self                          string // this executable, for cgi-exec
	public                        map[string]bool
	forge                         *forge
}

func (s *gitServer) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if ok {
		return subtle.ConstantTimeCompare([]byte(u), []byte(s.user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(s.password)) == 1
	}
	h := r.Header.Get("Authorization")
	for _, prefix := range []string{"token ", "Bearer "} {
		if strings.HasPrefix(h, prefix) {
			return subtle.ConstantTimeCompare([]byte(strings.TrimPrefix(h, prefix)), []byte(s.password)) == 1
		}
	}
	return false
}

func (s *gitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/v1/repos/") {
		if !s.authorized(r) {
			writeJSON(w, 401, map[string]string{"message": "Bad credentials"})
			return
		}
		s.forge.serve(w, r, strings.TrimPrefix(r.URL.Path, "/api/v1/repos/"))
		return
	}
	repo := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
	push := r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack")
	authed := s.authorized(r)
	if (!s.public[repo] || push) && !authed {
		w.Header().Set("WWW-Authenticate", `Basic realm="quayside-test-git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	// Buffer the whole body before starting the CGI program. CGI cannot take
	// a chunked body (net/http/cgi answers 400) and libgit2 always sends
	// pushes chunked; and git-http-backend, promised CONTENT_LENGTH bytes
	// that never come (a client gone mid-push), reads its empty stdin in a
	// busy loop forever.
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, 512<<20))
		if err != nil || (r.ContentLength >= 0 && int64(len(body)) != r.ContentLength) {
			http.Error(w, "incomplete request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
	}
	env := []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1"}
	if authed {
		env = append(env, "REMOTE_USER="+s.user)
	}
	// Through `testcluster cgi-exec`, so the CGI program dies with this
	// server instead of outliving a test that killed it.
	h := &cgi.Handler{Path: s.self, Args: []string{"cgi-exec", s.backend}, Root: "/", Env: env}
	h.ServeHTTP(w, r)
}

type pull struct {
	Number int    `json:"number"`
	State  string `json:"state"`
	Title  string `json:"title"`
	Body   string `json:"body"`
	Head   ref    `json:"head"`
	Base   ref    `json:"base"`
	URL    string `json:"html_url"`
	Merged bool   `json:"merged"`
}

type ref struct {
	Ref string `json:"ref"`
}

type forge struct {
	mu    sync.Mutex
	pulls map[string][]*pull
	root  string // the bare repositories: {repo}.git serves {owner}/{repo}
}

// serve handles {owner}/{repo}/pulls[/{n}[/merge]].
func (f *forge) serve(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 3 || parts[2] != "pulls" {
		writeJSON(w, 404, map[string]string{"message": "Not Found"})
		return
	}
	key := parts[0] + "/" + parts[1]
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case len(parts) == 3 && r.Method == http.MethodGet:
		state := r.URL.Query().Get("state")
		head := r.URL.Query().Get("head")
		out := []*pull{}
		for _, p := range f.pulls[key] {
			if (state == "" || state == "all" || p.State == state) &&
				(head == "" || head == p.Head.Ref || strings.HasSuffix(head, ":"+p.Head.Ref)) {
				out = append(out, p)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
		writeJSON(w, 200, out)
	case len(parts) == 3 && r.Method == http.MethodPost:
		var in struct{ Title, Body, Head, Base string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Head == "" || in.Base == "" || in.Title == "" {
			writeJSON(w, 422, map[string]string{"message": "Validation Failed"})
			return
		}
		for _, p := range f.pulls[key] {
			if p.State == "open" && p.Head.Ref == in.Head && p.Base.Ref == in.Base {
				writeJSON(w, 422, map[string]string{"message": "A pull request already exists for " + in.Head})
				return
			}
		}
		n := len(f.pulls[key]) + 1
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		p := &pull{Number: n, State: "open", Title: in.Title, Body: in.Body, Head: ref{in.Head}, Base: ref{in.Base},
			URL: scheme + "://" + r.Host + "/" + key + "/pulls/" + strconv.Itoa(n)}
		f.pulls[key] = append(f.pulls[key], p)
		writeJSON(w, 201, p)
	case len(parts) == 5 && parts[4] == "merge" && r.Method == http.MethodPut:
		n, err := strconv.Atoi(parts[3])
		if err != nil || n < 1 || n > len(f.pulls[key]) {
			writeJSON(w, 404, map[string]string{"message": "Not Found"})
			return
		}
		f.merge(w, f.pulls[key][n-1], parts[1])
	case len(parts) == 4 && (r.Method == http.MethodPatch || r.Method == http.MethodGet):
		n, err := strconv.Atoi(parts[3])
		if err != nil || n < 1 || n > len(f.pulls[key]) {
			writeJSON(w, 404, map[string]string{"message": "Not Found"})
			return
		}
		p := f.pulls[key][n-1]
		if r.Method == http.MethodPatch {
			var in struct {
				Title *string
				Body  *string
				State *string
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				writeJSON(w, 422, map[string]string{"message": "Validation Failed"})
				return
			}
			if in.Title != nil {
				p.Title = *in.Title
			}
			if in.Body != nil {
				p.Body = *in.Body
			}
			if in.State != nil {
				p.State = *in.State
			}
		}
		writeJSON(w, 200, p)
	default:
		writeJSON(w, 405, map[string]string{"message": "Method Not Allowed"})
	}
}

// merge fast-forwards the pull request's base branch to its head (the
// only merge quayside's tests need: the proposal is always on top of the
// base), in {repo}.git, and closes it as merged, as GitHub answers.
func (f *forge) merge(w http.ResponseWriter, p *pull, repo string) {
	if p.State != "open" {
		writeJSON(w, 405, map[string]string{"message": "Pull Request is not mergeable"})
		return
	}
	gitDir := path.Join(f.root, repo+".git")
	rev := func(ref string) (string, error) {
		out, err := exec.Command("git", "--git-dir", gitDir, "rev-parse", "--verify", "refs/heads/"+ref).Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := rev(p.Head.Ref)
	if err != nil {
		writeJSON(w, 422, map[string]string{"message": "Head branch is missing"})
		return
	}
	// A base branch without commits yet (a new side repository) is created.
	base, err := rev(p.Base.Ref)
	if err != nil {
		base = strings.Repeat("0", 40)
	} else if exec.Command("git", "--git-dir", gitDir, "merge-base", "--is-ancestor", base, head).Run() != nil {
		writeJSON(w, 405, map[string]string{"message": "Pull Request is not mergeable (not a fast-forward)"})
		return
	}
	if out, err := exec.Command("git", "--git-dir", gitDir, "update-ref", "refs/heads/"+p.Base.Ref, head, base).CombinedOutput(); err != nil {
		writeJSON(w, 409, map[string]string{"message": "Base branch was modified: " + strings.TrimSpace(string(out))})
		return
	}
	p.State = "closed"
	p.Merged = true
	writeJSON(w, 200, map[string]any{"sha": head, "merged": true, "message": "Pull Request successfully merged"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// runCgiExec replaces itself with the CGI program args[0] after asking the
// kernel to SIGKILL it when its parent (the git server) dies.
func runCgiExec(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: testcluster cgi-exec PROGRAM [ARGS...]")
	}
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %v", errno)
	}
	// The parent may have died before prctl: then nobody would signal us.
	if os.Getppid() != parent {
		return fmt.Errorf("the git server is gone")
	}
	return syscall.Exec(args[0], args, os.Environ())
}
