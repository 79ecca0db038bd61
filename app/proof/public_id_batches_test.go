package proof_test

import (
	"testing"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/proof"
)

// TestPublicIDsOfNewBatchesAreValid keeps the proof portal's check in step with the
// ids batch creation makes: a mismatch would answer every real QR scan with a 404.
func TestPublicIDsOfNewBatchesAreValid(t *testing.T) {
	if proof.PublicIDLength != batches.PublicIDLength {
		t.Fatalf("proof expects %d characters, batches make %d", proof.PublicIDLength, batches.PublicIDLength)
	}
	for i := range 200 {
		id, err := batches.NewPublicID([]byte("test key"), "rec"+string(rune('a'+i%26))+"000000000000")
		if err != nil {
			t.Fatal(err)
		}
		if !proof.ValidPublicID(id) {
			t.Fatalf("batches made %q, which the proof portal refuses", id)
		}
	}
}
