package helper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// ErrBadSetting is an unknown setting or a value it does not take.
var ErrBadSetting = errors.New("bad setting")

// settings are the keys `config` knows, with their allowed values; the
// first is the default.
var settings = map[string][]string{
	SettingExpiryWarnings: {"on", "off"},
	SettingStore:          store.Stores,
}

// SettingStore is the `config` key naming where add, import and git's
// store put new secrets.
const SettingStore = "store"

// SettingKeys are the known settings, sorted.
func SettingKeys() []string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CheckSetting refuses an unknown key.
func CheckSetting(key string) error {
	if _, ok := settings[key]; !ok {
		return fmt.Errorf("%w: unknown setting %q: known: %s", ErrBadSetting, key, strings.Join(SettingKeys(), ", "))
	}
	return nil
}

// CheckSettingValue refuses an unknown key, or a value it does not take.
func CheckSettingValue(key, value string) error {
	if err := CheckSetting(key); err != nil {
		return err
	}
	if allowed := settings[key]; !slices.Contains(allowed, value) {
		return fmt.Errorf("%w: %s takes %s, not %q", ErrBadSetting, key, strings.Join(allowed, " or "), value)
	}
	return nil
}

// Setting is key's value in ix (its default when unset).
func Setting(ix *store.Index, key string) string {
	return cmp.Or(ix.Settings[key], settings[key][0])
}

// SetSetting records key=value; the default is recorded as unset.
func (h *Helper) SetSetting(ctx context.Context, key, value string) error {
	if err := CheckSettingValue(key, value); err != nil {
		return err
	}
	return h.Store.Update(ctx, func(tx *store.Tx) error {
		if tx.Index.Settings == nil {
			tx.Index.Settings = map[string]string{}
		}
		if value == settings[key][0] {
			delete(tx.Index.Settings, key)
		} else {
			tx.Index.Settings[key] = value
		}
		tx.Changed()
		return nil
	})
}
