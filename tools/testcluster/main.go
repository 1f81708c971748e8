// Command testcluster runs a real Kubernetes control plane (etcd and
// kube-apiserver) on loopback for quayside's tests and demo, the way
// controller-runtime's envtest does: no kubelet, no controller-manager.
//
// One binary, several subcommands:
//
//	testcluster start --dir DIR [--watch-stdin]   supervise etcd + apiserver
//	testcluster etcd ...                          embedded etcd (internal)
//	testcluster apiserver ...                     kube-apiserver (internal)
//	testcluster gitserver --root DIR --password P git http-backend + pulls API
//	testcluster cgi-exec PROGRAM ...              CGI child of gitserver (internal)
//
// `start` generates a CA, a serving certificate, a service-account key and an
// admin token in DIR, starts both servers on free loopback ports, writes
// DIR/kubeconfig and prints one line `READY <kubeconfig path>` on stdout.
// It stops both servers on SIGINT/SIGTERM, or when stdin closes with
// --watch-stdin (so a test binary that dies, even by SIGKILL, takes its
// control plane with it). SIGUSR1 restarts the API server on the same etcd.
package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	sub, args := os.Args[1], os.Args[2:]
	switch sub {
	case "start":
		if err := runStart(args); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
			os.Exit(1)
		}
	case "etcd":
		if err := runEtcd(args); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster etcd: %v\n", err)
			os.Exit(1)
		}
	case "gitserver":
		if err := runGitServer(args); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster gitserver: %v\n", err)
			os.Exit(1)
		}
	case "cgi-exec":
		if err := runCgiExec(args); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster cgi-exec: %v\n", err)
			os.Exit(1)
		}
	case "apiserver":
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testcluster start --dir DIR [--watch-stdin] | gitserver --root DIR --password P [--public A.git,B.git] | etcd ... | apiserver ...")
	os.Exit(2)
}
