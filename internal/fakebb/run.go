package fakebb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// Config is the JSON configuration read by fakebbd (and Run).
type Config struct {
	Flavor      Flavor   `json:"flavor"`
	ContextPath string   `json:"context_path"`
	Repos       []string `json:"repos"`
	Tokens      []Token  `json:"tokens"`
}

// StartConfig reads a JSON Config from r, starts a server in dir, creates the
// repositories and adds the tokens. It returns the server and the clone URLs
// in the order of cfg.Repos.
func StartConfig(dir string, r io.Reader) (*Server, []string, error) {
	var cfg Config
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, nil, fmt.Errorf("fakebb: reading config: %w", err)
	}
	s, err := Start(dir, Options{Flavor: cfg.Flavor, ContextPath: cfg.ContextPath})
	if err != nil {
		return nil, nil, err
	}
	urls := make([]string, 0, len(cfg.Repos))
	for _, repo := range cfg.Repos {
		u, err := s.CreateRepo(repo)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		urls = append(urls, u)
	}
	for _, t := range cfg.Tokens {
		s.AddToken(t)
	}
	return s, urls, nil
}

// Run is fakebbd: it starts a server from the JSON config on in, writes
// "URL=<base url>", "CA=<ca file>" and one "REPO=<clone url>" line per
// repository to out, then serves until ctx is done.
func Run(ctx context.Context, dir string, in io.Reader, out io.Writer) error {
	s, urls, err := StartConfig(dir, in)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := fmt.Fprintf(out, "URL=%s\nCA=%s\n", s.URL, s.CAFile); err != nil {
		return err
	}
	for _, u := range urls {
		if _, err := fmt.Fprintf(out, "REPO=%s\n", u); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}
