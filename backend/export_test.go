package backend

// Unregister removes a scheme registered by a test.
func Unregister(scheme string) {
	openersMu.Lock()
	defer openersMu.Unlock()
	delete(openers, scheme)
}
