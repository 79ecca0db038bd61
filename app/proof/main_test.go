package proof_test

import (
	"testing"

	"github.com/opspine/opspine/app/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
