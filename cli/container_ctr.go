package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// addContainerCtrCommands adds pause, unpause, top and stats.
func addContainerCtrCommands(root, containerCmd *cobra.Command, env *Env) {
	for _, mk := range []func(*Env) *cobra.Command{newPauseCmd, newUnpauseCmd, newTopCmd, newStatsCmd} {
		root.AddCommand(mk(env))
		containerCmd.AddCommand(mk(env))
	}
}

func newPauseCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerPause(ctx, name, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}

func newUnpauseCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

func newTopCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.ContainerTop(context.Background(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(env.Out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
	}
}

func newStatsCmd(env *Env) *cobra.Command {
	var noStream, all bool
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx := context.Background()
			names := args
			if len(names) == 0 {
				list, err := c.ContainerList(ctx, client.ContainerListOptions{All: all})
				if err != nil {
					return err
				}
				for _, ctr := range list.Items {
					names = append(names, ctr.ID[:12])
				}
			}
			if noStream {
				rows := make([]statsRow, len(names))
				var wg sync.WaitGroup
				errs := make([]error, len(names))
				for i, name := range names {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rows[i], errs[i] = oneStats(ctx, c, name)
					}()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						return err
					}
				}
				return printStats(env.Out, rows)
			}
			return streamStats(ctx, env, c, names)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	cmd.Flags().Bool("no-trunc", false, "Do not truncate output")
	return cmd
}

func oneStats(ctx context.Context, c *client.Client, name string) (statsRow, error) {
	res, err := c.ContainerStats(ctx, name, client.ContainerStatsOptions{IncludePreviousSample: true})
	if err != nil {
		return statsRow{}, err
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return statsRow{}, err
	}
	return newStatsRow(name, &s), nil
}

// streamStats follows every container's stream and redraws the table
// every second, as docker does.
func streamStats(ctx context.Context, env *Env, c *client.Client, names []string) error {
	var mu sync.Mutex
	rows := make([]statsRow, len(names))
	for i, name := range names {
		rows[i] = statsRow{id: name, name: name, cpu: "--", mem: "-- / --", memPerc: "--", netIO: "--", blockIO: "--", pids: "--"}
		go func() {
			res, err := c.ContainerStats(ctx, name, client.ContainerStatsOptions{Stream: true})
			if err != nil {
				return
			}
			defer res.Body.Close()
			dec := json.NewDecoder(res.Body)
			for {
				var s container.StatsResponse
				if err := dec.Decode(&s); err != nil {
					return
				}
				mu.Lock()
				rows[i] = newStatsRow(name, &s)
				mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		mu.Lock()
		snapshot := append([]statsRow(nil), rows...)
		mu.Unlock()
		fmt.Fprint(env.Out, "\033[2J\033[H")
		if err := printStats(env.Out, snapshot); err != nil {
			return err
		}
	}
}

type statsRow struct {
	id, name, cpu, mem, memPerc, netIO, blockIO, pids string
}

// newStatsRow computes docker stats' figures from one sample.
func newStatsRow(arg string, s *container.StatsResponse) statsRow {
	cpu := 0.0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		cpu = cpuDelta / sysDelta * online * 100
	}
	used := float64(s.MemoryStats.Usage)
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && float64(v) < used {
			used -= float64(v)
			break
		}
	}
	limit := float64(s.MemoryStats.Limit)
	memPerc := 0.0
	if limit > 0 {
		memPerc = used / limit * 100
	}
	var rx, tx, rd, wr float64
	for _, n := range s.Networks {
		rx += float64(n.RxBytes)
		tx += float64(n.TxBytes)
	}
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			rd += float64(e.Value)
		case "write":
			wr += float64(e.Value)
		}
	}
	id := s.ID
	if len(id) > 12 {
		id = id[:12]
	}
	name := strings.TrimPrefix(s.Name, "/")
	if name == "" {
		name = arg
	}
	return statsRow{
		id: id, name: name,
		cpu:     fmt.Sprintf("%.2f%%", cpu),
		mem:     units.BytesSize(used) + " / " + units.BytesSize(limit),
		memPerc: fmt.Sprintf("%.2f%%", memPerc),
		netIO:   units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3),
		blockIO: units.HumanSizeWithPrecision(rd, 3) + " / " + units.HumanSizeWithPrecision(wr, 3),
		pids:    fmt.Sprint(s.PidsStats.Current),
	}
}

func printStats(out io.Writer, rows []statsRow) error {
	w := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	fmt.Fprintln(w, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.id, r.name, r.cpu, r.mem, r.memPerc, r.netIO, r.blockIO, r.pids)
	}
	return w.Flush()
}
