package batches_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/opspine/opspine/app/batches"
)

func TestPublicIDIsKeyedAndSalted(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	salt := bytes.Repeat([]byte{7}, 16)
	id := batches.PublicIDFrom(key, "rec123456789012", salt)
	if !regexp.MustCompile(`^[a-z2-7]{20}$`).MatchString(id) {
		t.Fatalf("public id %q is not 20 lowercase base32 characters", id)
	}
	if again := batches.PublicIDFrom(key, "rec123456789012", salt); again != id {
		t.Errorf("the same key, record and salt gave %q then %q", id, again)
	}
	if other := batches.PublicIDFrom([]byte("another key, same everything else"), "rec123456789012", salt); other == id {
		t.Error("a different key gave the same public id: it does not depend on the key")
	}
	if other := batches.PublicIDFrom(key, "rec123456789012", bytes.Repeat([]byte{8}, 16)); other == id {
		t.Error("a different salt gave the same public id")
	}
	seen := map[string]bool{}
	for range 1000 {
		id, err := batches.NewPublicID(key, "rec123456789012")
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("public id %s drawn twice for the same record", id)
		}
		seen[id] = true
	}
	if _, err := batches.NewPublicID(nil, "x"); err == nil {
		t.Error("a public id was made without a key")
	}
}

// Without OPSPINE_PUBLIC_ID_KEY the key is made once, kept private in the data
// directory and read back on the next start.
func TestLoadPublicIDKeyMakesOneKeyAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	key, err := batches.LoadPublicIDKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 64 {
		t.Errorf("made a key of %d characters, want 64 (32 bytes in hex)", len(key))
	}
	path := filepath.Join(dir, batches.PublicIDKeyFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	if again, _ := batches.LoadPublicIDKey(dir, ""); !bytes.Equal(again, key) {
		t.Error("a second load gave another key")
	}
	stored, _ := os.ReadFile(path)
	if !bytes.Equal(bytes.TrimSpace(stored), key) {
		t.Error("the stored key is not the key in use")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the data directory, want only the key", len(entries))
	}

	configured, err := batches.LoadPublicIDKey(t.TempDir(), "configured secret")
	if err != nil || string(configured) != "configured secret" {
		t.Errorf("configured key: %q, %v", configured, err)
	}

	short := t.TempDir()
	os.WriteFile(filepath.Join(short, batches.PublicIDKeyFile), []byte("short\n"), 0o600)
	if _, err := batches.LoadPublicIDKey(short, ""); err == nil {
		t.Error("a key file holding a short key was accepted")
	}
}
