// Command hello-server is the bundled example workload: a small static HTTP
// server that says where it runs. `make demo` puts it on a disk and boots it.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var uts syscall.Utsname
		_ = syscall.Uname(&uts)
		host, _ := os.Hostname()
		fmt.Fprintf(w, "hello from a ginit VM: host %s, kernel %s, pid %d, greeting %q\n",
			host, charsToString(uts.Release[:]), os.Getpid(), os.Getenv("GREETING"))
	})
	srv := &http.Server{Addr: addr}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		fmt.Println("hello-server: stopping")
		_ = srv.Close()
	}()
	fmt.Printf("hello-server: listening on %s\n", addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "hello-server: %v\n", err)
		os.Exit(1)
	}
}

func charsToString(ca []int8) string {
	var b strings.Builder
	for _, c := range ca {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
