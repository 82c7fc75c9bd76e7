// Command goproxy is the baseline of the filter benchmark (issue 21.3): the
// least a Go reverse proxy process is, net/http's server with
// httputil.ReverseProxy and a default-like http.Transport, nothing else (no
// tokens, keys, logs or metrics). tools/bench-filter.sh builds it and
// BenchmarkFilterSmall measures it beside the filter, in the same run, its
// CPU read as the filter process's is.
//
// Usage: goproxy UPSTREAM-URL. It listens on a free loopback port, prints
// "goproxy-addr HOST:PORT", answers each "cpu" line on standard input with
// its CPU time so far ("filter-cpu-ns N", user + system, getrusage) and exits
// at the end of standard input. GOMAXPROCS is Go's default unless the
// environment sets it.
package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goproxy UPSTREAM-URL")
		os.Exit(2)
	}
	up, err := url.Parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Go's default transport, with a pool as large as the filter's
	// (max_idle_conns = 256) so that concurrent clients never dial, and
	// never through an environment proxy.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(up) }, Transport: tr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, rp) }()
	fmt.Printf("goproxy-addr %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "cpu" {
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Printf("filter-cpu-ns %d\n", ru.Utime.Nano()+ru.Stime.Nano())
		}
	}
}
