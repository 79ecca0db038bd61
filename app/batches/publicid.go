package batches

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// A public id names a batch in its proof URL. It is HMAC-SHA256, keyed with a secret
// kept on the server, over the batch's record id and 128 random bits, cut to 96 bits
// and written as 20 lowercase base32 characters: it cannot be guessed, nor derived
// from the code or the record id without the key.

// PublicIDLength is the length of every public id.
const PublicIDLength = 20

// PublicIDKeyFile is the file in the data directory that keeps the generated key when
// OPSPINE_PUBLIC_ID_KEY is not set.
const PublicIDKeyFile = "opspine_public_id.key"

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewPublicID returns a new public id for the batch with this record id.
func NewPublicID(key []byte, recordID string) (string, error) {
	if len(key) == 0 {
		return "", errors.New("public id: the key is empty")
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", fmt.Errorf("public id: %w", err)
	}
	return PublicIDFrom(key, recordID, salt[:]), nil
}

// PublicIDFrom is the public id of recordID with this key and salt (NewPublicID draws
// the salt).
func PublicIDFrom(key []byte, recordID string, salt []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("opspine batch public id v1\x00"))
	mac.Write([]byte(recordID))
	mac.Write([]byte{0})
	mac.Write(salt)
	return lowerBase32.EncodeToString(mac.Sum(nil)[:12])
}

var publicIDKeys struct {
	sync.Mutex
	byPath map[string][]byte
}

// LoadPublicIDKey returns the key for public ids: configured (OPSPINE_PUBLIC_ID_KEY)
// when it is set, otherwise the key kept in dataDir/opspine_public_id.key, made
// (32 random bytes, hex, mode 0600) the first time. Two processes starting together
// end up with the same key.
func LoadPublicIDKey(dataDir, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	path := filepath.Join(dataDir, PublicIDKeyFile)
	publicIDKeys.Lock()
	defer publicIDKeys.Unlock()
	if key, ok := publicIDKeys.byPath[path]; ok {
		return key, nil
	}
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("public id key: %w", err)
	}
	if publicIDKeys.byPath == nil {
		publicIDKeys.byPath = map[string][]byte{}
	}
	publicIDKeys.byPath[path] = key
	return key, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key := strings.TrimSpace(string(b))
	if len(key) < 32 {
		return nil, fmt.Errorf("%s holds %d characters, fewer than 32; remove it to make a new key (only batches created from now on get ids from it) or set OPSPINE_PUBLIC_ID_KEY", path, len(key))
	}
	return []byte(key), nil
}

// createKeyFile writes a new key to a temporary file and links it into place, so that
// no reader ever sees a half-written key; when another process got there first, its
// key is the one returned.
func createKeyFile(path string) ([]byte, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	key := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), PublicIDKeyFile+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, err
	}
	return []byte(key), nil
}
