package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

func newImportCommand(g *globals) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			var src io.Reader = g.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = f
			}
			q := url.Values{"fromSrc": {"-"}}
			if len(args) == 2 {
				q.Set("repo", args[1])
			}
			for _, ch := range changes {
				q.Add("changes", ch)
			}
			if message != "" {
				q.Set("message", message)
			}
			if platform != "" {
				q.Set("platform", platform)
			}
			resp, err := c.Do(ctx, "POST", "/images/create", q, src, nil)
			if err != nil {
				return daemonError(err)
			}
			defer resp.Body.Close()
			return printJSONStream(g, resp.Body)
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

// printJSONStream prints a JSON message stream's statuses; an error
// message ends it with a failure.
func printJSONStream(g *globals, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m struct {
			Status      string `json:"status"`
			ID          string `json:"id"`
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.ErrorDetail != nil:
			return StatusError{Status: m.ErrorDetail.Message, Code: 1}
		case m.Error != "":
			return StatusError{Status: m.Error, Code: 1}
		case m.Stream != "":
			fmt.Fprint(g.stdout, m.Stream)
		case m.ID != "":
			fmt.Fprintf(g.stdout, "%s: %s\n", m.ID, m.Status)
		case m.Status != "":
			fmt.Fprintln(g.stdout, m.Status)
		}
	}
	return sc.Err()
}

func newTagCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			repo, tag := args[1], ""
			if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
				repo, tag = repo[:i], repo[i+1:]
			}
			q := url.Values{"repo": {repo}}
			if tag != "" {
				q.Set("tag", tag)
			}
			if _, err := c.Do(ctx, "POST", "/images/"+args[0]+"/tag", q, nil, nil); err != nil {
				return daemonError(err)
			}
			return nil
		},
	}
}

func newRmiCommand(g *globals) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			q := url.Values{}
			if force {
				q.Set("force", "1")
			}
			if noPrune {
				q.Set("noprune", "1")
			}
			failed := false
			for _, name := range args {
				var res []image.DeleteResponse
				if err := c.JSON(ctx, "DELETE", "/images/"+name, q, nil, &res); err != nil {
					fmt.Fprintln(g.stderr, daemonError(err))
					failed = true
					continue
				}
				for _, r := range res {
					if r.Untagged != "" {
						fmt.Fprintln(g.stdout, "Untagged:", r.Untagged)
					}
					if r.Deleted != "" {
						fmt.Fprintln(g.stdout, "Deleted:", r.Deleted)
					}
				}
			}
			if failed {
				return StatusError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

// historyRow is what `history --format` templates see.
type historyRow struct {
	h       image.HistoryResponseItem
	noTrunc bool
}

func (r historyRow) ID() string {
	if r.h.ID == "" || r.h.ID == "<missing>" {
		return "<missing>"
	}
	if r.noTrunc {
		return r.h.ID
	}
	return shortID(r.h.ID)
}
func (r historyRow) CreatedSince() string { return ago(time.Unix(r.h.Created, 0)) }
func (r historyRow) CreatedAt() string    { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }
func (r historyRow) CreatedBy() string {
	if r.noTrunc {
		return r.h.CreatedBy
	}
	return ellipsis(r.h.CreatedBy, 45)
}
func (r historyRow) Size() string    { return humanSize(r.h.Size) }
func (r historyRow) Comment() string { return r.h.Comment }

func newHistoryCommand(g *globals) *cobra.Command {
	var noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			var hist []image.HistoryResponseItem
			if err := c.JSON(ctx, "GET", "/images/"+args[0]+"/history", nil, nil, &hist); err != nil {
				return daemonError(err)
			}
			if quiet {
				format = "{{.ID}}"
			}
			if format == "" {
				format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			}
			rows := make([]any, len(hist))
			for i, h := range hist {
				rows[i] = historyRow{h: h, noTrunc: noTrunc}
			}
			return render(g.stdout, format, map[string]string{
				"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
				"Size": "SIZE", "Comment": "COMMENT",
			}, rows)
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a Go template")
	return cmd
}
