//go:build linux || freebsd || openbsd || netbsd || dragonfly

package store

import (
	"context"
	"fmt"

	ss "github.com/zalando/go-keyring/secret_service"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

// List implements Lister: the ids (the "username" attribute go-keyring
// writes) of every item filed under our service in the login collection,
// which is where go-keyring keeps them.
func (k *Keyring) List(ctx context.Context) ([]string, error) {
	result := make(chan []string, 1)
	err := k.call(ctx, "list", func(context.Context) error {
		var ids []string
		defer func() {
			select {
			case <-result: // a retry replaces the first attempt's list
			default:
			}
			result <- ids
		}()
		svc, err := ss.NewSecretService()
		if err != nil {
			return err
		}
		coll := svc.GetLoginCollection()
		if err := svc.Unlock(coll.Path()); err != nil {
			return err
		}
		items, err := svc.SearchItems(coll, map[string]string{"service": k.Service})
		if err != nil {
			return err
		}
		for _, item := range items {
			v, err := svc.Object("org.freedesktop.secrets", item).GetProperty("org.freedesktop.Secret.Item.Attributes")
			if ssread.Vanished(err) {
				continue // deleted since the search (another process's write)
			}
			if err != nil {
				return err
			}
			attrs, ok := v.Value().(map[string]string)
			if !ok {
				return fmt.Errorf("item %s: unexpected attributes type %T", item, v.Value())
			}
			ids = append(ids, attrs["username"])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return <-result, nil
}
