package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// slack posts to a Slack-compatible incoming webhook: {"text": …, "blocks": […]}. Slack shows the
// blocks and uses text for notifications and clients without blocks. The URL is the secret: it
// comes from url_env and appears masked (scheme and host) in errors.
type slack struct {
	name string
	url  *url.URL
	o    ChannelOptions
}

func newSlack(c ChannelConfig, o ChannelOptions) (*slack, error) {
	u, err := channelURL(c, o)
	if err != nil {
		return nil, err
	}
	return &slack{name: c.Name, url: u, o: o}, nil
}

// SlackPayload is the body a slack channel posts.
type SlackPayload struct {
	Text   string          `json:"text"`
	Blocks json.RawMessage `json:"blocks"`
}

// SlackBody renders a message for an incoming webhook: the rule's blocks when it gave any,
// otherwise a header block of the subject and a section of the text.
func SlackBody(m Message) ([]byte, error) {
	text := m.Text
	if m.Subject != "" && text == "" {
		text = m.Subject
	}
	blocks := m.Blocks
	if len(blocks) == 0 || string(blocks) == "null" {
		var bs []map[string]any
		if m.Subject != "" {
			bs = append(bs, map[string]any{"type": "header",
				"text": map[string]any{"type": "plain_text", "text": truncateRunes(m.Subject, 150)}})
		}
		if m.Text != "" {
			bs = append(bs, map[string]any{"type": "section",
				"text": map[string]any{"type": "mrkdwn", "text": truncateRunes(m.Text, 3000)}})
		}
		var err error
		if blocks, err = json.Marshal(bs); err != nil {
			return nil, err
		}
	}
	return json.Marshal(SlackPayload{Text: text, Blocks: blocks})
}

func (s *slack) Send(ctx context.Context, row Row) error {
	body, err := SlackBody(row.Message)
	if err != nil {
		return &SendError{Channel: s.name, Permanent: true, Err: fmt.Errorf("could not render the message: %w", err)}
	}
	return post(ctx, s.o, s.name, s.url, body, nil)
}

// truncateRunes keeps s within Slack's limits for a block's text (150 for a header, 3000 for a
// section), on a rune boundary.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
