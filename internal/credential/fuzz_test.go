package credential

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzReadWrite checks, for any input, that Read either fails with a
// *ParseError or returns a credential that Write can emit and Read reads
// back unchanged; and that reading through a tiny bufio buffer agrees.
func FuzzReadWrite(f *testing.F) {
	for _, tc := range readCases {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(checkRoundTrip)
}

func checkRoundTrip(t *testing.T, in []byte) {
	c, err := Read(bytes.NewReader(in))
	c2, err2 := Read(bufio.NewReaderSize(bytes.NewReader(in), 16))
	if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) {
		t.Fatalf("Read through a small buffer differs: (%#v, %v) vs (%#v, %v)", c, err, c2, err2)
	}
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Read error is not a *ParseError: %v", err)
		}
		if len(err.Error()) > 200 {
			t.Fatalf("error message of %d bytes: it must name a key, not echo input", len(err.Error()))
		}
		return
	}

	var out bytes.Buffer
	if err := Write(&out, c); err != nil {
		t.Fatalf("Write of what Read accepted: %v", err)
	}
	back, err := Read(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("Read of Write output %q: %v", out.Bytes(), err)
	}
	if !reflect.DeepEqual(normalize(c), normalize(back)) {
		t.Fatalf("round trip changed the credential:\n   in %q\n  out %q\n got %#v\nwant %#v", in, out.Bytes(), back, c)
	}
	var again bytes.Buffer
	if err := Write(&again, back); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Fatalf("Write is not canonical: %q then %q (%v)", out.Bytes(), again.Bytes(), err)
	}
}

// normalize makes empty lists nil, so that nil and empty compare equal.
func normalize(c *Credential) *Credential {
	n := *c
	for _, l := range []*[]string{&n.State, &n.Capabilities, &n.WWWAuth} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return &n
}
