package benchmark

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand is `opspine bench`: it prints one table and exits non-zero only when a
// delivery was not answered 200 or did not end processed (or the bench could not run),
// never because a figure missed its target.
func NewCommand() *cobra.Command {
	opts := DefaultOptions()
	var (
		cpuProfile    string
		ingestionOnly bool
		arm64Exe      string
		sizes         = []int{10_000, 100_000, 1_000_000}
		checkRows     []int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measures opspine against a child `serve` and in-process, and prints one table beside ceilings and targets",
		Long: "Starts this executable as `serve` on a free loopback port with its data in a temp dir, sends it signed\n" +
			"orders/create deliveries (a throughput phase from several connections, then a fixed-rate open-loop\n" +
			"latency phase) and prints deliveries fully processed per second and answer latencies beside plain\n" +
			"SQLite inserts of the same payloads and an empty handler (GET /api/health on the same child), both\n" +
			"measured in the same run; then resident memory and cold start. Then the cost curves: the same\n" +
			"ingestion and the proof page on children whose databases already hold --sizes orders, FEFO\n" +
			"allocation at --sizes historical orders and every monitoring check on --check-rows rows; the email\n" +
			"outbox and label PDFs; and the linux/arm64 binary under qemu-user when it and qemu-aarch64-static\n" +
			"are there. Progress goes to stderr, the table to stdout.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		Run: func(cmd *cobra.Command, _ []string) {
			plan := Plan{IngestionOnly: ingestionOnly, CurveOrders: positive(sizes), AllocationOrders: positive(sizes),
				CheckRows: positive(sizes), OutboxAndLabels: true, Arm64Exe: arm64Exe}
			if cmd.Flags().Changed("check-rows") {
				plan.CheckRows = positive(checkRows)
				plan.IngestionOnly = plan.IngestionOnly || len(plan.CheckRows) == 0 // the older spelling of --ingestion-only
			}
			if err := runCommand(cmd, opts, plan, cpuProfile); err != nil {
				msg := err.Error()
				if !strings.HasPrefix(msg, "bench: ") {
					msg = "bench: " + msg
				}
				fmt.Fprintln(os.Stderr, msg)
				os.Exit(1) // PocketBase's Start does not pass a command's error on as the exit status
			}
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Deliveries, "deliveries", opts.Deliveries, "deliveries in the throughput phase")
	f.IntVar(&opts.Concurrency, "concurrency", opts.Concurrency, "keep-alive connections sending in the throughput phase")
	f.IntVar(&opts.Warmup, "warmup", opts.Warmup, "deliveries sent and processed before the clock starts")
	f.IntVar(&opts.Rate, "rate", opts.Rate, "deliveries (and proof pages) per second in the open-loop latency phases")
	f.DurationVar(&opts.Duration, "duration", opts.Duration, "length of the latency phases")
	f.DurationVar(&opts.SettleTimeout, "settle-timeout", opts.SettleTimeout, "longest wait for a phase's deliveries to be processed")
	f.StringVar(&opts.Exe, "exe", "", "opspine binary to start as the server (default: this executable)")
	f.BoolVar(&opts.KeepDir, "keep", false, "keep the temp dirs with the servers' data and logs")
	f.IntSliceVar(&sizes, "sizes", sizes, "orders already stored for the cost curves (ingestion, proof page, memory, cold start, allocation, checks); 0 measures no curve")
	f.IntSliceVar(&checkRows, "check-rows", nil, "database sizes (orders and inbox rows) the monitoring checks are timed on (default: --sizes); 0 alone is --ingestion-only")
	f.BoolVar(&ingestionOnly, "ingestion-only", false, "measure only ingestion on an empty database, with its ceilings, memory and cold start")
	f.StringVar(&arm64Exe, "arm64-exe", "", "linux/arm64 opspine run under qemu-aarch64-static (default: opspine-linux-arm64 beside the server binary, as make build-arm64 writes it; none skips)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this bench process (the load generator, not the server) to this file")
	return cmd
}

func runCommand(cmd *cobra.Command, opts Options, plan Plan, cpuProfile string) error {
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
	switch plan.Arm64Exe {
	case "none":
		plan.Arm64Exe = ""
	case "":
		exe := opts.Exe
		if exe == "" {
			exe, _ = os.Executable()
		}
		plan.Arm64Exe = filepath.Join(filepath.Dir(exe), "opspine-linux-arm64")
	}
	opts.Progress = os.Stderr // not cmd.ErrOrStderr(): PocketBase's error writer prints to stdout
	res, err := Run(ctx, opts, plan)
	if res.Ingestion.Throughput.Sent > 0 {
		fmt.Fprint(cmd.OutOrStdout(), res.Table())
	}
	if err != nil {
		return err
	}
	if problems := res.Problems(); len(problems) > 0 {
		return fmt.Errorf("%d delivery problem(s), listed under the table", len(problems))
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d measurement(s) failed, listed under the table", len(res.Failed))
	}
	return nil
}

// positive is sizes without those below 1.
func positive(sizes []int) []int {
	return slices.DeleteFunc(slices.Clone(sizes), func(n int) bool { return n <= 0 })
}
