package cli

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// addNetworkCommands adds this area's commands.
func addNetworkCommands(root *cobra.Command, env *Env) {
	nc := &cobra.Command{Use: "network", Short: "Manage networks", Args: noArgs}
	nc.AddCommand(newNetworkCreateCmd(env), newNetworkLsCmd(env), newNetworkInspectCmd(env), newNetworkRmCmd(env),
		newNetworkPruneCmd(env), newNetworkConnectCmd(env), newNetworkDisconnectCmd(env))
	root.AddCommand(nc, newPortCmd(env))
}

func newNetworkCreateCmd(env *Env) *cobra.Command {
	var driver, subnet, gateway, ipRange string
	var internal, ipv6, attachable bool
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			o := client.NetworkCreateOptions{Driver: driver, Internal: internal, Attachable: attachable,
				Labels: keyValues(labels), Options: keyValues(opts), IPAM: &network.IPAM{Driver: "default", Options: map[string]string{}}}
			if ipv6 {
				o.EnableIPv6 = &ipv6
			}
			if subnet != "" || gateway != "" || ipRange != "" {
				var cfg network.IPAMConfig
				if subnet != "" {
					if cfg.Subnet, err = netip.ParsePrefix(subnet); err != nil {
						return fmt.Errorf("invalid subnet %s: %w", subnet, err)
					}
				}
				if gateway != "" {
					if cfg.Gateway, err = netip.ParseAddr(gateway); err != nil {
						return fmt.Errorf("invalid gateway %s: %w", gateway, err)
					}
				}
				if ipRange != "" {
					if cfg.IPRange, err = netip.ParsePrefix(ipRange); err != nil {
						return fmt.Errorf("invalid ip-range %s: %w", ipRange, err)
					}
				}
				o.IPAM.Config = []network.IPAMConfig{cfg}
			}
			res, err := c.NetworkCreate(context.Background(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Out, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fl.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	fl.StringVar(&gateway, "gateway", "", "IPv4 or IPv6 Gateway for the master subnet")
	fl.StringVar(&ipRange, "ip-range", "", "Allocate container ip from a sub-range")
	fl.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fl.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 networking")
	fl.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	fl.StringArrayVar(&labels, "label", nil, "Set metadata on a network")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	return cmd
}

func keyValues(in []string) map[string]string {
	out := map[string]string{}
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// networkRow is one row of network ls, with docker's field names.
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r networkRow) ID() string {
	if r.trunc {
		return formatter.TruncateID(r.n.ID)
	}
	return r.n.ID
}
func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv4() string      { return fmt.Sprint(r.n.EnableIPv4) }
func (r networkRow) IPv6() string      { return fmt.Sprint(r.n.EnableIPv6) }
func (r networkRow) Internal() string  { return fmt.Sprint(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.String() }
func (r networkRow) Labels() string {
	var kv []string
	for k, v := range r.n.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
func (r networkRow) Label(name string) string { return r.n.Labels[name] }

var networkHeader = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "Labels": "LABELS"}

func newNetworkLsCmd(env *Env) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filterFlags []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			res, err := c.NetworkList(context.Background(), client.NetworkListOptions{Filters: f})
			if err != nil {
				return err
			}
			items := res.Items
			sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
			if quiet {
				for _, n := range items {
					fmt.Fprintln(env.Out, networkRow{n, !noTrunc}.ID())
				}
				return nil
			}
			if format == "" {
				format = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
			}
			rows := make([]any, 0, len(items))
			for _, n := range items {
				rows = append(rows, networkRow{n, !noTrunc})
			}
			return formatter.Write(env.Out, format, networkHeader, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	fl.StringArrayVarP(&filterFlags, "filter", "f", nil, "Provide filter values (e.g. \"driver=bridge\")")
	return cmd
}

func newNetworkInspectCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(env, args, format, false, "network", func(ctx context.Context, c *client.Client, ref string, _ bool) (inspected, error) {
				res, err := c.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
				if err != nil {
					return inspected{}, err
				}
				return inspected{typed: res.Network, raw: res.Raw}, nil
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func newNetworkRmCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
				return err
			})
		},
	}
}

func newNetworkPruneCmd(env *Env) *cobra.Command {
	var force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(env.Out, "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")
				var answer string
				fmt.Fscanln(env.In, &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			res, err := c.NetworkPrune(context.Background(), client.NetworkPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Networks:")
				for _, n := range res.Report.NetworksDeleted {
					fmt.Fprintln(env.Out, n)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

func newNetworkConnectCmd(env *Env) *cobra.Command {
	var ip string
	var aliases []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			es := &network.EndpointSettings{Aliases: aliases}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return fmt.Errorf("invalid IPv4 address: %s", ip)
				}
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a}
			}
			_, err = c.NetworkConnect(context.Background(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: es})
			return err
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCmd(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			_, err = c.NetworkDisconnect(context.Background(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

// newPortCmd is docker port: the container's published ports, or the
// bindings of one port.
func newPortCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.ContainerInspect(context.Background(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if ns := res.Container.NetworkSettings; ns != nil {
				ports = ns.Ports
			}
			if len(args) == 2 {
				spec := args[1]
				if !strings.Contains(spec, "/") {
					spec += "/tcp"
				}
				p, err := network.ParsePort(spec)
				if err != nil {
					return fmt.Errorf("Error: invalid port (%s): %w", args[1], err)
				}
				bs := ports[p]
				if len(bs) == 0 {
					return fmt.Errorf("Error: No public port '%s' published for %s", p, args[0])
				}
				for _, b := range bs {
					fmt.Fprintln(env.Out, hostPortString(b))
				}
				return nil
			}
			keys := make([]network.Port, 0, len(ports))
			for p := range ports {
				keys = append(keys, p)
			}
			sort.Slice(keys, func(i, j int) bool {
				if keys[i].Num() != keys[j].Num() {
					return keys[i].Num() < keys[j].Num()
				}
				return keys[i].Proto() < keys[j].Proto()
			})
			for _, p := range keys {
				for _, b := range ports[p] {
					fmt.Fprintf(env.Out, "%s -> %s\n", p, hostPortString(b))
				}
			}
			return nil
		},
	}
}

func hostPortString(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	if b.HostIP.Is6() {
		return "[" + ip + "]:" + b.HostPort
	}
	return ip + ":" + b.HostPort
}
