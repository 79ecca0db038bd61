package hooks

// SystemWritten is the guard's list of collections only opspine writes, for the API
// rules test in package hooks_test.
func SystemWritten() map[string][]string { return systemWritten }
