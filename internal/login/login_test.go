package login

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The loopback listener serves only this login's redirect: other local
// requests (another program, a stale tab) are refused and the login keeps
// waiting for its own.
func TestBrowserWaitsForItsOwnRedirect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cb := fmt.Sprintf("http://%s/cb", ln.Addr())
	ln.Close()
	type res struct {
		code string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		code, err := Code(context.Background(), Options{Callback: cb, Browser: "true", Wait: time.Minute, Out: io.Discard}, "https://bitbucket.org/site/oauth2/authorize?x", "STATE")
		done <- res{code, err}
	}()
	get := func(u string) int {
		for range 100 {
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			time.Sleep(20 * time.Millisecond) // the listener is starting
		}
		t.Fatalf("no listener at %s", u)
		return 0
	}
	assert.Equal(t, http.StatusBadRequest, get(cb+"?code=x&state=forged"))
	assert.Equal(t, http.StatusBadRequest, get(cb+"?error=access_denied"))
	assert.Equal(t, http.StatusNotFound, get(strings.TrimSuffix(cb, "/cb")+"/favicon.ico"))
	select {
	case r := <-done:
		t.Fatalf("a foreign request ended the login: %+v", r)
	default:
	}
	assert.Equal(t, http.StatusOK, get(cb+"?code=the-code&state=STATE"))
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, "the-code", r.code)
}

func TestCallbackMustBeLoopback(t *testing.T) {
	for _, cb := range []string{"https://127.0.0.1:53171/", "http://example.com:53171/", "http://127.0.0.1/", "::"} {
		_, err := Code(context.Background(), Options{Callback: cb, Out: io.Discard}, "u", "s")
		assert.ErrorContains(t, err, "loopback", cb)
	}
}

func TestPasted(t *testing.T) {
	in := bufio.NewReader(strings.NewReader("http://127.0.0.1:53171/?code=C1&state=S\n"))
	var out strings.Builder
	code, err := Code(context.Background(), Options{NoBrowser: true, In: in, Out: &out}, "https://auth.example/?q", "S")
	require.NoError(t, err)
	assert.Equal(t, "C1", code)
	assert.Contains(t, out.String(), "https://auth.example/?q")
}
