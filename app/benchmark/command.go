package benchmark

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand is `opspine bench`: it prints the table and exits non-zero only when a
// delivery was not answered 200 or did not end processed (or the bench could not run),
// never because a figure missed its target.
func NewCommand() *cobra.Command {
	opts := DefaultOptions()
	var cpuProfile string
	checkSizes := []int{10_000, 100_000, 1_000_000}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measures Shopify webhook ingestion against a child `serve` and prints one table beside its ceiling and targets",
		Long: "Starts this executable as `serve` on a free loopback port with its data in a temp dir, sends it signed\n" +
			"orders/create deliveries (a throughput phase from several connections, then a fixed-rate open-loop\n" +
			"latency phase) and prints deliveries fully processed per second and answer latencies beside plain\n" +
			"SQLite inserts of the same payloads measured in the same run.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		Run: func(cmd *cobra.Command, _ []string) {
			if err := runCommand(cmd, opts, cpuProfile, checkSizes); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1) // PocketBase's Start does not pass a command's error on as the exit status
			}
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Deliveries, "deliveries", opts.Deliveries, "deliveries in the throughput phase")
	f.IntVar(&opts.Concurrency, "concurrency", opts.Concurrency, "keep-alive connections sending in the throughput phase")
	f.IntVar(&opts.Warmup, "warmup", opts.Warmup, "deliveries sent and processed before the clock starts")
	f.IntVar(&opts.Rate, "rate", opts.Rate, "deliveries per second in the open-loop latency phase")
	f.DurationVar(&opts.Duration, "duration", opts.Duration, "length of the latency phase")
	f.DurationVar(&opts.SettleTimeout, "settle-timeout", opts.SettleTimeout, "longest wait for a phase's deliveries to be processed")
	f.StringVar(&opts.Exe, "exe", "", "opspine binary to start as the server (default: this executable)")
	f.BoolVar(&opts.KeepDir, "keep", false, "keep the temp dir with the server's data and log")
	f.IntSliceVar(&checkSizes, "check-rows", checkSizes, "database sizes (orders and inbox rows) the monitoring checks are timed on; 0 skips the outbox, checks, labels and proof measurements")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this bench process (the load generator, not the server) to this file")
	return cmd
}

func runCommand(cmd *cobra.Command, opts Options, cpuProfile string, checkSizes []int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	opts.Progress = cmd.ErrOrStderr()
	rep, err := Run(ctx, opts)
	if rep.Throughput.Sent > 0 {
		fmt.Fprint(cmd.OutOrStdout(), rep.Table())
	}
	if err != nil {
		return err
	}
	if problems := rep.Problems(); len(problems) > 0 {
		return fmt.Errorf("%d delivery problem(s), listed under the table", len(problems))
	}
	checkSizes = slices.DeleteFunc(checkSizes, func(n int) bool { return n <= 0 })
	if len(checkSizes) > 0 {
		progress := func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "bench:", s) }
		features := MeasureFeatures(progress, checkSizes)
		fmt.Fprint(cmd.OutOrStdout(), "\nOutbox, monitoring, batches\n", features.Table())
		if len(features.Errors) > 0 {
			return fmt.Errorf("%d measurement(s) failed, listed under the table", len(features.Errors))
		}
	}
	return nil
}
