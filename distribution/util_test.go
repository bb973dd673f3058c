package distribution

import (
	"encoding/json"

	"github.com/berth-dev/berth/image"
)

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func imagePutRef(ref string) image.PutOptions { return image.PutOptions{Ref: ref} }
