package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// inspected is one object found by inspect: its typed value (for
// templates) and the daemon's raw JSON (for the default output).
type inspected struct {
	typed any
	raw   []byte
}

type inspectFunc func(ctx context.Context, c *client.Client, ref string, size bool) (inspected, error)

func inspectContainer(ctx context.Context, c *client.Client, ref string, size bool) (inspected, error) {
	res, err := c.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
	if err != nil {
		return inspected{}, err
	}
	return inspected{typed: res.Container, raw: res.Raw}, nil
}

func inspectImage(ctx context.Context, c *client.Client, ref string, _ bool) (inspected, error) {
	var raw bytes.Buffer
	res, err := c.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
	if err != nil {
		return inspected{}, err
	}
	return inspected{typed: res.InspectResponse, raw: raw.Bytes()}, nil
}

// runInspect prints each found object (an indented JSON array, or the
// template per object) and reports the missing ones as docker does.
func runInspect(env *Env, refs []string, format string, size bool, kind string, find inspectFunc) error {
	c, err := env.Client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var found []inspected
	var errs []string
	for _, ref := range refs {
		obj, err := find(ctx, c, ref, size)
		if err != nil {
			if errdefs.IsNotFound(err) && kind == "object" {
				errs = append(errs, fmt.Sprintf("Error: No such %s: %s", kind, ref))
			} else {
				errs = append(errs, err.Error())
			}
			continue
		}
		found = append(found, obj)
	}
	if err := writeInspect(env, found, format); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func writeInspect(env *Env, found []inspected, format string) error {
	if format == "" || format == "json" {
		raws := make([][]byte, 0, len(found))
		for _, f := range found {
			raws = append(raws, bytes.TrimSpace(f.raw))
		}
		var buf bytes.Buffer
		joined := append(append([]byte("["), bytes.Join(raws, []byte(","))...), ']')
		if err := json.Indent(&buf, joined, "", "    "); err != nil {
			return fmt.Errorf("indent inspect output: %w", err)
		}
		buf.WriteByte('\n')
		_, err := env.Out.Write(buf.Bytes())
		return err
	}
	tmpl, err := formatter.Parse(format)
	if err != nil {
		return err
	}
	for _, f := range found {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, f.typed); err != nil {
			// Fields the typed value lacks may still be in the raw JSON.
			var m any
			dec := json.NewDecoder(bytes.NewReader(f.raw))
			dec.UseNumber()
			if dec.Decode(&m) != nil {
				return fmt.Errorf("template: %w", err)
			}
			buf.Reset()
			if err := tmpl.Execute(&buf, m); err != nil {
				return fmt.Errorf("template: %w", err)
			}
		}
		buf.WriteByte('\n')
		if _, err := env.Out.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func newInspectCmd(env *Env) *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch typ {
			case "container":
				return runInspect(env, args, format, size, "container", inspectContainer)
			case "image":
				return runInspect(env, args, format, size, "image", inspectImage)
			case "":
				return runInspect(env, args, format, size, "object", func(ctx context.Context, c *client.Client, ref string, size bool) (inspected, error) {
					obj, err := inspectContainer(ctx, c, ref, size)
					if err == nil || !errdefs.IsNotFound(err) {
						return obj, err
					}
					return inspectImage(ctx, c, ref, size)
				})
			}
			return fmt.Errorf("%q is not a valid value for --type", typ)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

func newContainerInspectCmd(env *Env) *cobra.Command {
	var format string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(env, args, format, size, "container", inspectContainer)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

func newImageInspectCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(env, args, format, false, "image", inspectImage)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}
