package alerts_test

import (
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// newApp returns a PocketBase app on its own SQLite files with every opspine migration
// applied, removed when the test ends.
func newApp(t *testing.T) core.App { return testkit.NewApp(t) }
