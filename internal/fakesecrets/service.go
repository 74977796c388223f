package fakesecrets

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
)

// D-Bus names of the Secret Service API.
const (
	ServiceName = "org.freedesktop.secrets"

	ServicePath     = dbus.ObjectPath("/org/freedesktop/secrets")
	LoginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	DefaultAlias    = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")

	ifaceService    = "org.freedesktop.Secret.Service"
	ifaceCollection = "org.freedesktop.Secret.Collection"
	ifaceItem       = "org.freedesktop.Secret.Item"
	ifaceSession    = "org.freedesktop.Secret.Session"
	ifacePrompt     = "org.freedesktop.Secret.Prompt"
	ifaceProperties = "org.freedesktop.DBus.Properties"

	noPrompt = dbus.ObjectPath("/")
)

// Method names as Calls records them and Fault matches them.
const (
	MethodGetProperty = "Properties.Get"
	MethodOpenSession = "Service.OpenSession"
	MethodUnlock      = "Service.Unlock"
	MethodLock        = "Service.Lock"
	MethodSearch      = "Collection.SearchItems"
	MethodSearchAll   = "Service.SearchItems"
	MethodGetSecrets  = "Service.GetSecrets"
	MethodCreateItem  = "Collection.CreateItem"
	MethodGetSecret   = "Item.GetSecret"
	MethodDelete      = "Item.Delete"
	MethodClose       = "Session.Close"
	MethodPrompt      = "Prompt.Prompt"
	MethodReadAlias   = "Service.ReadAlias"
)

// PromptMode is what an unlock prompt does once the client calls Prompt.
type PromptMode int

const (
	// PromptNever: Prompt returns, and Completed is never emitted, as when
	// the unlock dialog is on a screen nobody looks at.
	PromptNever PromptMode = iota
	// PromptDismiss: Completed(dismissed=true), as when the user cancels
	// the dialog or (gnome-keyring without a display) it cannot be shown.
	PromptDismiss
	// PromptUnlock: Completed(false, unlocked objects), as when the user
	// types the password.
	PromptUnlock
)

// Fault is how the service misbehaves. The zero value behaves.
type Fault struct {
	// DieOn: on the first call of this method (e.g. MethodGetSecret) the
	// service drops its bus connection without answering, as if its
	// process died inside the call: the caller gets NoReply, and every
	// later call finds no owner for org.freedesktop.secrets.
	DieOn string
	// HangOn: calls of this method are never answered (until Close).
	HangOn string
	// Locked: the collection is locked; Unlock answers with a prompt that
	// behaves as Prompt says, and items cannot be read, written or deleted
	// until it is unlocked.
	Locked bool
	Prompt PromptMode
	// NotReadyOn: the next NotReadyTimes calls of this method are answered
	// as gnome-keyring answers a client it has not registered yet ("Method
	// X is not implemented on interface ...", UnknownMethod), which a
	// retry clears.
	NotReadyOn    string
	NotReadyTimes int
	// NoAlias: ReadAlias("default") answers "/" (no default collection):
	// clients fall back to the login collection.
	NoAlias bool
	// PromptOnCreate and PromptOnDelete: CreateItem and Item.Delete
	// answer with a prompt that does the work when run (KeePassXC asks
	// for every CreateItem), behaving as Prompt says.
	PromptOnCreate bool
	PromptOnDelete bool
	// HideLocked: a search of the locked collection finds nothing at all,
	// not even locked items (KeePassXC with its database locked).
	HideLocked bool
}

// Secret is the Secret Service's (oayays) secret struct.
type Secret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// Item is one stored item.
type Item struct {
	Label      string
	Attributes map[string]string
	Secret     string
}

// Service is the fake Secret Service, owning org.freedesktop.secrets on a
// bus. Its methods are safe for concurrent use.
type Service struct {
	conn *dbus.Conn

	mu     sync.Mutex
	fault  Fault
	locked bool
	items  map[dbus.ObjectPath]*Item
	seq    int
	calls  []string
	died   string

	hung      chan string
	release   chan struct{}
	closeOnce sync.Once
}

var errGone = &dbus.Error{Name: "org.freedesktop.DBus.Error.Failed", Body: []any{"fakesecrets: not answering"}}

func errLocked(what dbus.ObjectPath) *dbus.Error {
	return &dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked", Body: []any{fmt.Sprintf("%s is locked", what)}}
}

// Start connects a well-behaved fake Secret Service to the bus; it leaves
// the bus when the test ends.
func Start(t testing.TB, bus *Bus) *Service {
	t.Helper()
	s, err := start(bus.Address)
	if err != nil {
		t.Fatalf("fakesecrets: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func start(address string) (*Service, error) {
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", address, err)
	}
	s := &Service{
		conn:    conn,
		items:   map[dbus.ObjectPath]*Item{},
		hung:    make(chan string, 16),
		release: make(chan struct{}),
	}
	exports := []struct {
		methods map[string]any
		path    dbus.ObjectPath
		iface   string
	}{
		{map[string]any{
			"OpenSession": s.openSession,
			"Unlock":      s.unlock,
			"Lock":        s.lock,
			"SearchItems": s.serviceSearch,
			"GetSecrets":  s.getSecrets,
			"ReadAlias":   s.readAlias,
		}, ServicePath, ifaceService},
		{map[string]any{
			"Get":    s.getProperty,
			"GetAll": s.getAllProperties,
		}, ServicePath, ifaceProperties},
	}
	for _, c := range []dbus.ObjectPath{LoginCollection, DefaultAlias} {
		exports = append(exports, struct {
			methods map[string]any
			path    dbus.ObjectPath
			iface   string
		}{map[string]any{
			"SearchItems": s.search,
			"CreateItem":  s.createItem,
		}, c, ifaceCollection}, struct {
			methods map[string]any
			path    dbus.ObjectPath
			iface   string
		}{map[string]any{"Get": s.collectionProperty, "GetAll": s.collectionProperties}, c, ifaceProperties})
	}
	for _, e := range exports {
		if err := conn.ExportMethodTable(e.methods, e.path, e.iface); err != nil {
			conn.Close()
			return nil, err
		}
	}
	reply, err := conn.RequestName(ServiceName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		return nil, fmt.Errorf("owning %s: reply %v, %v", ServiceName, reply, err)
	}
	return s, nil
}

// Close leaves the bus and releases hung calls.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.conn.Close()
		close(s.release)
	})
}

// SetFault changes how the service behaves from now on.
func (s *Service) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
	s.locked = f.Locked
}

// Calls returns the methods called so far, in order.
func (s *Service) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Died returns the method during which the service dropped off the bus,
// or "".
func (s *Service) Died() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.died
}

// Hung receives the name of each method call that Fault.HangOn holds.
func (s *Service) Hung() <-chan string { return s.hung }

// Items returns a copy of every stored item by object path.
func (s *Service) Items() map[dbus.ObjectPath]Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[dbus.ObjectPath]Item, len(s.items))
	for p, it := range s.items {
		out[p] = Item{Label: it.Label, Attributes: maps.Clone(it.Attributes), Secret: it.Secret}
	}
	return out
}

// enter records a call and applies the fault. When it returns an error
// the handler answers with it instead (or not at all: errGone goes out on
// a connection that is gone by then).
func (s *Service) enter(method string) *dbus.Error {
	s.mu.Lock()
	s.calls = append(s.calls, method)
	f := &s.fault
	if s.died != "" {
		s.mu.Unlock()
		return errGone
	}
	if method == f.DieOn {
		s.died = method
	}
	if method == f.NotReadyOn && f.NotReadyTimes > 0 {
		f.NotReadyTimes--
		s.mu.Unlock()
		return notReady(method)
	}
	dieOn, hangOn := f.DieOn, f.HangOn
	s.mu.Unlock()
	switch method {
	case dieOn:
		s.conn.Close()
		return errGone
	case hangOn:
		select {
		case s.hung <- method:
		default:
		}
		<-s.release
		return errGone
	}
	return nil
}

// notReady is gnome-keyring's answer to a client it has not finished
// registering: UnknownMethod, the error name a vanished object also gets.
func notReady(method string) *dbus.Error {
	iface, name, _ := strings.Cut(method, ".")
	return &dbus.Error{
		Name: "org.freedesktop.DBus.Error.UnknownMethod",
		Body: []any{fmt.Sprintf("Method %s is not implemented on interface org.freedesktop.Secret.%s", name, iface)},
	}
}

func (s *Service) nextPath(kind string) dbus.ObjectPath {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return dbus.ObjectPath(fmt.Sprintf("%s/%s/n%d", ServicePath, kind, s.seq))
}

func (s *Service) getProperty(iface, name string) (dbus.Variant, *dbus.Error) {
	if err := s.enter(MethodGetProperty); err != nil {
		return dbus.MakeVariant(""), err
	}
	if iface == ifaceService && name == "Collections" {
		return dbus.MakeVariant([]dbus.ObjectPath{LoginCollection}), nil
	}
	return dbus.MakeVariant(""), &dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty", Body: []any{iface + "." + name}}
}

// collectionProperty is Properties.Get on the collection: its Locked.
func (s *Service) collectionProperty(iface, name string) (dbus.Variant, *dbus.Error) {
	if err := s.enter(MethodGetProperty); err != nil {
		return dbus.MakeVariant(""), err
	}
	if iface == ifaceCollection && name == "Locked" {
		s.mu.Lock()
		defer s.mu.Unlock()
		return dbus.MakeVariant(s.locked), nil
	}
	return dbus.MakeVariant(""), &dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty", Body: []any{iface + "." + name}}
}

// collectionProperties is Properties.GetAll on the collection: Locked,
// and Items (none while locked when the fault hides them, as KeePassXC's
// locked database does).
func (s *Service) collectionProperties(iface string) (map[string]dbus.Variant, *dbus.Error) {
	if err := s.enter("Properties.GetAll"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := []dbus.ObjectPath{}
	if !s.locked || !s.fault.HideLocked {
		for p := range s.items {
			items = append(items, p)
		}
	}
	return map[string]dbus.Variant{"Locked": dbus.MakeVariant(s.locked), "Items": dbus.MakeVariant(items)}, nil
}

func (s *Service) getAllProperties(iface string) (map[string]dbus.Variant, *dbus.Error) {
	if err := s.enter("Properties.GetAll"); err != nil {
		return nil, err
	}
	if iface == ifaceService {
		return map[string]dbus.Variant{"Collections": dbus.MakeVariant([]dbus.ObjectPath{LoginCollection})}, nil
	}
	return map[string]dbus.Variant{}, nil
}

func (s *Service) openSession(algorithm string, _ dbus.Variant) (dbus.Variant, dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodOpenSession); err != nil {
		return dbus.MakeVariant(""), noPrompt, err
	}
	if algorithm != "plain" {
		return dbus.MakeVariant(""), noPrompt, &dbus.Error{Name: "org.freedesktop.DBus.Error.NotSupported", Body: []any{"only plain sessions"}}
	}
	path := s.nextPath("session")
	closeSession := func() *dbus.Error {
		if err := s.enter(MethodClose); err != nil {
			return err
		}
		_ = s.export(nil, path, ifaceSession)
		return nil
	}
	if err := s.export(map[string]any{"Close": closeSession}, path, ifaceSession); err != nil {
		return dbus.MakeVariant(""), noPrompt, dbus.MakeFailedError(err)
	}
	return dbus.MakeVariant(""), path, nil
}

func (s *Service) readAlias(name string) (dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodReadAlias); err != nil {
		return noPrompt, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "default" || s.fault.NoAlias {
		return noPrompt, nil
	}
	return LoginCollection, nil
}

// newPrompt exports a prompt that, once run, does work (when the fault's
// Prompt mode is PromptUnlock) and completes with its result, or is
// dismissed (PromptDismiss), or never completes (PromptNever).
func (s *Service) newPrompt(work func() dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	path := s.nextPath("prompt")
	s.mu.Lock()
	mode := s.fault.Prompt
	s.mu.Unlock()
	prompt := func(string) *dbus.Error {
		if err := s.enter(MethodPrompt); err != nil {
			return err
		}
		// The signal goes out before the reply; the client listens for it
		// before it calls Prompt.
		switch mode {
		case PromptDismiss:
			_ = s.conn.Emit(path, ifacePrompt+".Completed", true, dbus.MakeVariant(""))
		case PromptUnlock:
			_ = s.conn.Emit(path, ifacePrompt+".Completed", false, work())
		}
		return nil
	}
	if err := s.export(map[string]any{"Prompt": prompt}, path, ifacePrompt); err != nil {
		return noPrompt, dbus.MakeFailedError(err)
	}
	return path, nil
}

func (s *Service) unlock(objects []dbus.ObjectPath) ([]dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodUnlock); err != nil {
		return nil, noPrompt, err
	}
	s.mu.Lock()
	locked, mode := s.locked, s.fault.Prompt
	s.mu.Unlock()
	if !locked {
		return objects, noPrompt, nil
	}
	path := s.nextPath("prompt")
	prompt := func(string) *dbus.Error {
		if err := s.enter(MethodPrompt); err != nil {
			return err
		}
		// The signal goes out before the reply; the client listens for it
		// before it calls Prompt.
		switch mode {
		case PromptDismiss:
			_ = s.conn.Emit(path, ifacePrompt+".Completed", true, dbus.MakeVariant([]dbus.ObjectPath{}))
		case PromptUnlock:
			s.mu.Lock()
			s.locked = false
			s.mu.Unlock()
			_ = s.conn.Emit(path, ifacePrompt+".Completed", false, dbus.MakeVariant(objects))
		}
		return nil
	}
	dismiss := func() *dbus.Error {
		if err := s.enter("Prompt.Dismiss"); err != nil {
			return err
		}
		_ = s.conn.Emit(path, ifacePrompt+".Completed", true, dbus.MakeVariant([]dbus.ObjectPath{}))
		return nil
	}
	if err := s.export(map[string]any{"Prompt": prompt, "Dismiss": dismiss}, path, ifacePrompt); err != nil {
		return nil, noPrompt, dbus.MakeFailedError(err)
	}
	return []dbus.ObjectPath{}, path, nil
}

func (s *Service) lock(objects []dbus.ObjectPath) ([]dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodLock); err != nil {
		return nil, noPrompt, err
	}
	s.mu.Lock()
	s.locked = true
	s.mu.Unlock()
	return objects, noPrompt, nil
}

func (s *Service) matching(attrs map[string]string) []dbus.ObjectPath {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dbus.ObjectPath
	for p, it := range s.items {
		ok := true
		for k, v := range attrs {
			if it.Attributes[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Service) search(attrs map[string]string) ([]dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodSearch); err != nil {
		return nil, err
	}
	return append([]dbus.ObjectPath{}, s.matching(attrs)...), nil
}

func (s *Service) serviceSearch(attrs map[string]string) ([]dbus.ObjectPath, []dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodSearchAll); err != nil {
		return nil, nil, err
	}
	found := append([]dbus.ObjectPath{}, s.matching(attrs)...)
	s.mu.Lock()
	locked, hide := s.locked, s.fault.HideLocked
	s.mu.Unlock()
	switch {
	case locked && hide:
		return []dbus.ObjectPath{}, []dbus.ObjectPath{}, nil
	case locked:
		return []dbus.ObjectPath{}, found, nil
	}
	return found, []dbus.ObjectPath{}, nil
}

func (s *Service) createItem(props map[string]dbus.Variant, secret Secret, replace bool) (dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodCreateItem); err != nil {
		return noPrompt, noPrompt, err
	}
	label, _ := props[ifaceItem+".Label"].Value().(string)
	attrs, _ := props[ifaceItem+".Attributes"].Value().(map[string]string)
	s.mu.Lock()
	locked := s.locked
	s.mu.Unlock()
	if locked {
		return noPrompt, noPrompt, errLocked(LoginCollection)
	}
	s.mu.Lock()
	viaPrompt := s.fault.PromptOnCreate
	s.mu.Unlock()
	if viaPrompt {
		p, err := s.newPrompt(func() dbus.Variant {
			path, _ := s.store(label, attrs, string(secret.Value))
			return dbus.MakeVariant(path)
		})
		return noPrompt, p, err
	}
	if replace {
		for _, p := range s.matching(attrs) {
			s.mu.Lock()
			it := s.items[p]
			same := it != nil && maps.Equal(it.Attributes, attrs)
			if same {
				it.Label, it.Secret = label, string(secret.Value)
			}
			s.mu.Unlock()
			if same {
				return p, noPrompt, nil
			}
		}
	}
	path, err := s.store(label, attrs, string(secret.Value))
	if err != nil {
		return noPrompt, noPrompt, err
	}
	return path, noPrompt, nil
}

// store adds an item.
func (s *Service) store(label string, attrs map[string]string, secret string) (dbus.ObjectPath, *dbus.Error) {
	path := dbus.ObjectPath(fmt.Sprintf("%s/i%d", LoginCollection, s.bump()))
	methods := map[string]any{
		"GetSecret": func(session dbus.ObjectPath) (Secret, *dbus.Error) { return s.getSecret(path, session) },
		"Delete":    func() (dbus.ObjectPath, *dbus.Error) { return s.deleteItem(path) },
	}
	propMethods := map[string]any{
		"Get": func(iface, name string) (dbus.Variant, *dbus.Error) { return s.itemProperty(path, iface, name) },
	}
	if err := s.export(methods, path, ifaceItem); err != nil {
		return noPrompt, dbus.MakeFailedError(err)
	}
	if err := s.export(propMethods, path, ifaceProperties); err != nil {
		return noPrompt, dbus.MakeFailedError(err)
	}
	s.mu.Lock()
	s.items[path] = &Item{Label: label, Attributes: maps.Clone(attrs), Secret: secret}
	s.mu.Unlock()
	return path, nil
}

// Put stores an item as CreateItem does (for a test's set-up: faults in
// force apply to it too) and returns its path.
func (s *Service) Put(attrs map[string]string, secret string) (dbus.ObjectPath, error) {
	props := map[string]dbus.Variant{
		ifaceItem + ".Label":      dbus.MakeVariant("test item"),
		ifaceItem + ".Attributes": dbus.MakeVariant(attrs),
	}
	path, _, err := s.createItem(props, Secret{Value: []byte(secret)}, false)
	if err != nil {
		return "", err
	}
	return path, nil
}

func (s *Service) bump() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func (s *Service) getSecret(path, session dbus.ObjectPath) (Secret, *dbus.Error) {
	if err := s.enter(MethodGetSecret); err != nil {
		return Secret{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked {
		return Secret{}, errLocked(path)
	}
	it, ok := s.items[path]
	if !ok {
		e := dbus.MakeNoObjectError(path)
		return Secret{}, &e
	}
	return Secret{Session: session, Parameters: []byte{}, Value: []byte(it.Secret), ContentType: "text/plain"}, nil
}

func (s *Service) deleteItem(path dbus.ObjectPath) (dbus.ObjectPath, *dbus.Error) {
	if err := s.enter(MethodDelete); err != nil {
		return noPrompt, err
	}
	s.mu.Lock()
	if s.locked {
		s.mu.Unlock()
		return noPrompt, errLocked(path)
	}
	_, ok := s.items[path]
	viaPrompt := s.fault.PromptOnDelete
	s.mu.Unlock()
	if !ok {
		e := dbus.MakeNoObjectError(path)
		return noPrompt, &e
	}
	drop := func() dbus.Variant {
		s.mu.Lock()
		delete(s.items, path)
		s.mu.Unlock()
		_ = s.export(nil, path, ifaceItem)
		_ = s.export(nil, path, ifaceProperties)
		return dbus.MakeVariant("")
	}
	if viaPrompt {
		return s.newPrompt(drop)
	}
	drop()
	return noPrompt, nil
}

func (s *Service) itemProperty(path dbus.ObjectPath, iface, name string) (dbus.Variant, *dbus.Error) {
	if err := s.enter(MethodGetProperty); err != nil {
		return dbus.MakeVariant(""), err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[path]
	if !ok {
		e := dbus.MakeNoObjectError(path)
		return dbus.MakeVariant(""), &e
	}
	if iface == ifaceItem {
		switch name {
		case "Attributes":
			return dbus.MakeVariant(maps.Clone(it.Attributes)), nil
		case "Label":
			return dbus.MakeVariant(it.Label), nil
		case "Locked":
			return dbus.MakeVariant(s.locked), nil
		}
	}
	return dbus.MakeVariant(""), &dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty", Body: []any{iface + "." + name}}
}

// getSecrets is Service.GetSecrets: the secrets of the unlocked items
// among those asked for.
func (s *Service) getSecrets(paths []dbus.ObjectPath, session dbus.ObjectPath) (map[dbus.ObjectPath]Secret, *dbus.Error) {
	if err := s.enter(MethodGetSecrets); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[dbus.ObjectPath]Secret{}
	if s.locked {
		return out, nil
	}
	for _, p := range paths {
		if it, ok := s.items[p]; ok {
			out[p] = Secret{Session: session, Parameters: []byte{}, Value: []byte(it.Secret), ContentType: "text/plain"}
		}
	}
	return out, nil
}

// exportMu makes exports one at a time: godbus 5.2 reads its object map
// without its lock while exporting, so exports from concurrent calls (two
// clients creating items at once) race.
var exportMu sync.Mutex

// export is conn.ExportMethodTable under exportMu.
func (s *Service) export(methods map[string]any, path dbus.ObjectPath, iface string) error {
	exportMu.Lock()
	defer exportMu.Unlock()
	return s.conn.ExportMethodTable(methods, path, iface)
}
