package cli

import "net/http"

// detectClient is the HTTP client of `setup --detect` (nil: Go's default
// transport, which honours HTTPS_PROXY and SSL_CERT_FILE); tests replace it.
var detectClient *http.Client
