package disktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// PrivateRegistry is one in-process registry served twice on 127.0.0.1:
// at Host over plain HTTP with no login, to push test images, and at
// TLSHost as a private registry is: HTTPS with a certificate of a CA made
// for the test (CAFile, PEM), and HTTP basic auth (User, Password), as an
// htpasswd file gives Docker's registry.
type PrivateRegistry struct {
	Host, TLSHost  string
	CAFile         string
	User, Password string
}

// NewPrivateRegistry starts a PrivateRegistry for the test.
func NewPrivateRegistry(t testing.TB) PrivateRegistry {
	t.Helper()
	p := PrivateRegistry{User: "puller", Password: "s3cret pass"}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	p.Host = strings.TrimPrefix(plain.URL, "http://")

	caCert, caKey := makeCert(t, nil, nil)
	leaf, leafKey := makeCert(t, caCert, caKey)
	p.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != p.User || pw != p.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test registry"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake errors
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.TLSHost = strings.TrimPrefix(srv.URL, "https://")
	return p
}

// ConfigJSON is a Docker config.json holding the registry's login for
// host (TLSHost, or the address a VM reaches it at), as `docker login`
// writes it.
func (p PrivateRegistry) ConfigJSON(host string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(p.User + ":" + p.Password))
	return []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth))
}

// DockerConfig writes ConfigJSON(TLSHost) in a new directory, for
// DOCKER_CONFIG.
func (p PrivateRegistry) DockerConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), p.ConfigJSON(p.TLSHost), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// makeCert makes a CA certificate when parent is nil, else a server
// certificate that parent signs, for 127.0.0.1 and for 10.0.2.2 (the
// host's loopback as QEMU's user network shows it to a VM).
func makeCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	if parent == nil {
		tmpl.Subject = pkix.Name{CommonName: "ginit test CA"}
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.Subject = pkix.Name{CommonName: "127.0.0.1"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 2, 2)}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// SilentListener accepts connections on 127.0.0.1 and never answers, as
// a hung registry does. It returns its host:port.
func SilentListener(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 1000)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for len(conns) > 0 {
			(<-conns).Close()
		}
	})
	return l.Addr().String()
}
