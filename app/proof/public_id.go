package proof

// PublicIDLength is the length of every public id: app/batches makes them as 20
// lowercase base32 characters (a keyed hash), a test keeps the two in step.
const PublicIDLength = 20

// ValidPublicID reports whether s has the form of a public id: PublicIDLength
// characters of [a-z0-9]. Anything else cannot name a batch, so it is answered 404
// before any query: a scanner trying random paths costs the server only this check.
func ValidPublicID(s string) bool {
	if len(s) != PublicIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
