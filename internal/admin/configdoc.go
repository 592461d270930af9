package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/palisade-sbc/palisade/internal/config"
)

// decodeConfig parses a document strictly; problems with field paths are
// config.Errors (422), a document that is not JSON at all is 400.
func decodeConfig(b []byte) (*config.Config, error) {
	cfg, err := config.Decode(b)
	if err != nil {
		var fe config.Errors
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, Errorf(http.StatusBadRequest, "the document is not valid JSON: %v", err)
	}
	return cfg, nil
}

func configGet(cfg *config.Config, path string) (json.RawMessage, error) {
	v, err := config.Get(cfg, path)
	if err != nil {
		return nil, Errorf(http.StatusNotFound, "%v", err)
	}
	return v, nil
}

// configSet sets path in cfg; a value that does not fit is 422 with its path.
func configSet(cfg *config.Config, path string, raw []byte) error {
	nc, err := config.Set(cfg, path, raw)
	if err != nil {
		var fe config.Errors
		if errors.As(err, &fe) {
			return err
		}
		return config.Errors{{Path: path, Message: err.Error()}}
	}
	*cfg = *nc
	return nil
}

func configDiff(a, b *config.Config) ([]config.Change, error) {
	cs, err := config.Diff(a, b)
	if cs == nil {
		cs = []config.Change{}
	}
	return cs, err
}
