package passstore

import (
	"errors"
	"fmt"
	"strings"
)

// Body is a decrypted entry: the secret on the first line, then fields,
// as pass users annotate entries ("username: alice").
type Body struct {
	Secret string
	Fields []Field // in file order; keys lower-cased, trimmed; values trimmed
}

// Field is one line after the secret; a line without ": " has Key "" and
// the line as its Value.
type Field struct{ Key, Value string }

// ParseBody splits a decrypted entry into its secret and fields. It
// accepts anything: CRLF line ends, a missing or present final newline.
func ParseBody(plaintext string) Body {
	lines := strings.Split(strings.TrimSuffix(plaintext, "\n"), "\n")
	b := Body{Secret: strings.TrimSuffix(lines[0], "\r")}
	for _, line := range lines[1:] {
		line = strings.TrimSuffix(line, "\r")
		if k, v, ok := strings.Cut(line, ": "); ok {
			b.Fields = append(b.Fields, Field{Key: strings.ToLower(strings.TrimSpace(k)), Value: strings.TrimSpace(v)})
		} else {
			b.Fields = append(b.Fields, Field{Value: line})
		}
	}
	return b
}

// Get is the value of the first field named key (case-insensitive).
func (b Body) Get(key string) (string, bool) {
	key = strings.ToLower(strings.TrimSpace(key))
	for _, f := range b.Fields {
		if key != "" && f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// FormatBody is the entry text for b: the secret, then "key: value" lines,
// each ending in a newline. It refuses a body that would not read back as
// b through ParseBody (a line break in any part, a key not lower-case and
// trimmed, ...). Its errors never contain the secret or a value.
func FormatBody(b Body) (string, error) {
	if strings.ContainsAny(b.Secret, "\r\n") {
		return "", errors.New("the secret contains a line break")
	}
	var sb strings.Builder
	sb.WriteString(b.Secret + "\n")
	for i, f := range b.Fields {
		switch {
		case strings.ContainsAny(f.Key, "\r\n") || strings.ContainsAny(f.Value, "\r\n"):
			return "", fmt.Errorf("field %d (%q) contains a line break", i+1, f.Key)
		case f.Key == "" && strings.Contains(f.Value, ": "):
			return "", fmt.Errorf("field %d has no key but its value contains \": \"", i+1)
		case f.Key == "":
			sb.WriteString(f.Value + "\n")
		case f.Key != strings.ToLower(strings.TrimSpace(f.Key)) || strings.Contains(f.Key, ": "):
			return "", fmt.Errorf("field key %q is not lower-case and trimmed, or contains \": \"", f.Key)
		case f.Value != strings.TrimSpace(f.Value):
			return "", fmt.Errorf("the value of field %q has leading or trailing spaces", f.Key)
		default:
			sb.WriteString(f.Key + ": " + f.Value + "\n")
		}
	}
	return sb.String(), nil
}

// Format keeps the secret out of anything printed with fmt (%v, %+v, %s,
// ...): a Body in a log line shows only its field keys.
func (b Body) Format(f fmt.State, _ rune) {
	keys := make([]string, len(b.Fields))
	for i, fl := range b.Fields {
		keys[i] = fl.Key
	}
	fmt.Fprintf(f, "passstore.Body{Secret:[redacted] Fields:%q}", keys)
}
