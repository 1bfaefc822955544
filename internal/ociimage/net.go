package ociimage

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Net sets the deadlines, retries and trusted CAs of every request made to
// a registry or to an HTTP server holding an OCI layout. A server that
// accepts the connection and never answers, or stops sending in the middle
// of a layer, ends the pull with an error instead of hanging it. A zero
// field takes its default.
type Net struct {
	DialTimeout   time.Duration // connecting, name lookup included; 10s
	TLSTimeout    time.Duration // the TLS handshake; 10s
	HeaderTimeout time.Duration // from the request sent to the response's headers; 30s
	// StallTimeout fails a response body when one read waits this long
	// without a byte: a slow stream that moves goes on; 30s.
	StallTimeout time.Duration
	// Retries is how many more times a GET or HEAD is tried after it got
	// no answer (no connection, no headers, a reset) or a 408, 429 or
	// 5xx; 2; -1 for none. A body that stalls is not retried: its bytes
	// are already on their way into the disk.
	Retries int
	// RetryWait is the pause before the first retry, doubled for each
	// next one; 1s.
	RetryWait time.Duration
	// RootCAs are the certificates a server's must chain to; nil: the
	// system's (see SystemCAs).
	RootCAs *x509.CertPool
}

func (n Net) withDefaults() Net {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&n.DialTimeout, 10*time.Second)
	def(&n.TLSTimeout, 10*time.Second)
	def(&n.HeaderTimeout, 30*time.Second)
	def(&n.StallTimeout, 30*time.Second)
	def(&n.RetryWait, time.Second)
	switch {
	case n.Retries == 0:
		n.Retries = 2
	case n.Retries < 0:
		n.Retries = 0
	}
	return n
}

// Transport is the one HTTP transport of every pull: the deadlines on
// connecting, the handshake and the headers, a stall deadline on each
// response body, and the retries of GET and HEAD.
func (n Net) Transport() http.RoundTripper {
	n = n.withDefaults()
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: n.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: n.RootCAs},
		TLSHandshakeTimeout:   n.TLSTimeout,
		ResponseHeaderTimeout: n.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
	return &netTransport{base: base, n: n}
}

type netTransport struct {
	base http.RoundTripper
	n    Net
}

// retryStatus are the answers worth asking again: the server is busy or
// a proxy in front of it failed.
var retryStatus = map[int]bool{
	http.StatusRequestTimeout: true, http.StatusTooManyRequests: true, http.StatusInternalServerError: true,
	http.StatusBadGateway: true, http.StatusServiceUnavailable: true, http.StatusGatewayTimeout: true,
}

func (t *netTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	idempotent := (req.Method == http.MethodGet || req.Method == http.MethodHead) && (req.Body == nil || req.Body == http.NoBody)
	wait := t.n.RetryWait
	for try := 0; ; try++ {
		resp, err := t.base.RoundTrip(req)
		last := !idempotent || try >= t.n.Retries
		switch {
		case err != nil && (last || req.Context().Err() != nil || !retryable(err)):
			return nil, t.fail(req, err, try+1)
		case err == nil && (last || !retryStatus[resp.StatusCode]):
			resp.Body = newStallReader(resp.Body, t.n.StallTimeout, req)
			return resp, nil
		}
		if resp != nil {
			// Read a little of the error page so the connection can be
			// reused; the answer asked again is what counts.
			io.CopyN(io.Discard, resp.Body, 4096)
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			return nil, t.fail(req, req.Context().Err(), try+1)
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// NetError is a request that failed for good: what went wrong, and how
// many times it was tried. The client's *url.Error around it names the
// request.
type NetError struct {
	Tries int
	Err   error
}

func (e *NetError) Error() string {
	msg := e.Err.Error()
	var ua x509.UnknownAuthorityError
	if errors.As(e.Err, &ua) {
		msg += " (add the registry's CA: oci2disk --ca-cert FILE; at boot, a PEM file in " + BootCADir + ")"
	}
	if e.Tries > 1 {
		msg += fmt.Sprintf(" (tried %d times)", e.Tries)
	}
	return msg
}

func (e *NetError) Unwrap() error { return e.Err }

// deadlineError says which deadline passed, in words, for an error of the
// transport that names no duration.
type deadlineError struct {
	msg string
	err error
}

func (e *deadlineError) Error() string { return e.msg }
func (e *deadlineError) Unwrap() error { return e.err }

func (t *netTransport) fail(req *http.Request, err error, tries int) error {
	var ne net.Error
	var op *net.OpError
	msg := err.Error()
	switch {
	case req.Context().Err() != nil: // the caller's end, not a deadline of ours
	case strings.HasSuffix(msg, "timeout awaiting response headers"):
		err = &deadlineError{fmt.Sprintf("connected, but no answer within %v", t.n.HeaderTimeout), err}
	case strings.HasSuffix(msg, "TLS handshake timeout"):
		err = &deadlineError{fmt.Sprintf("connected, but no TLS handshake within %v", t.n.TLSTimeout), err}
	case errors.As(err, &ne) && ne.Timeout() && errors.As(err, &op) && op.Op == "dial":
		err = &deadlineError{fmt.Sprintf("no connection within %v", t.n.DialTimeout), err}
	}
	return &NetError{Tries: tries, Err: err}
}

// retryable: the request got no answer, and asking again may get one.
// Refusals that will not change (a certificate, a TLS version, a protocol
// mismatch) are not retried.
func retryable(err error) bool {
	var (
		ne  net.Error
		rec tls.RecordHeaderError
	)
	switch {
	case isCertError(err), errors.As(err, &rec):
		return false
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}

// ErrStalled is a response body that stopped moving.
var ErrStalled = errors.New("stalled")

// stallReader fails a body when one Read waits longer than the limit for
// a byte. Only the time spent inside Read counts: a reader that is slow to
// ask (busy writing the disk) is not the server's stall.
type stallReader struct {
	body  io.ReadCloser
	limit time.Duration
	what  string
	timer *time.Timer

	mu      sync.Mutex
	stalled bool
}

func newStallReader(body io.ReadCloser, limit time.Duration, req *http.Request) *stallReader {
	s := &stallReader{body: body, limit: limit, what: req.Method + " " + req.URL.Redacted()}
	s.timer = time.AfterFunc(time.Hour, s.stall)
	s.timer.Stop()
	return s
}

func (s *stallReader) stall() {
	s.mu.Lock()
	s.stalled = true
	s.mu.Unlock()
	s.body.Close() // unblocks the Read
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.timer.Reset(s.limit)
	n, err := s.body.Read(p)
	s.timer.Stop()
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		return n, fmt.Errorf("%s: %w: no data for %v", s.what, ErrStalled, s.limit)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	return s.body.Close()
}

// BootCADir holds the PEM files of the CAs that ocipull trusts at boot
// beside its built-in roots.
const BootCADir = "/etc/ginit/ca.d"

// SystemCAs is the system's trusted roots with the certificates of the
// PEM files added: each file holds one or more CERTIFICATE blocks. The
// system's roots are Go's: the distribution's bundle, or only the files
// SSL_CERT_FILE and SSL_CERT_DIR name when they are set, or, in a program
// that imports golang.org/x/crypto/x509roots/fallback and finds no bundle,
// Mozilla's roots built in.
func SystemCAs(files ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		n := 0
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("CA certificate %s: %w", f, err)
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("CA certificate %s: no PEM CERTIFICATE block in it", f)
		}
	}
	return pool, nil
}

// CAFiles lists the *.pem and *.crt files of dir, sorted; none when dir
// does not exist.
func CAFiles(dir string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.pem", "*.crt"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	return files, nil
}
