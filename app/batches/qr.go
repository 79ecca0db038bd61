package batches

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"

	qrcode "github.com/skip2/go-qrcode"
)

// QRImageModulePixels is the size in pixels of one module of the stored QR image: about 360 px for a
// proof URL, sharp when printed or shown at any size staff need.
const QRImageModulePixels = 8

// QR is an encoded QR code: its modules, quiet zone included (Modules[y][x] is dark).
type QR struct {
	Content string
	Modules [][]bool
}

// NewQR encodes content with medium error correction (15% of the symbol may be lost),
// which keeps the symbol small enough for a pouch label and survives a crease.
func NewQR(content string) (QR, error) {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return QR{}, fmt.Errorf("encode QR code of %s: %w", content, err)
	}
	return QR{Content: content, Modules: q.Bitmap()}, nil
}

// PNG draws the code black on white, pixelsPerModule pixels per module.
func (q QR) PNG(pixelsPerModule int) ([]byte, error) {
	n := len(q.Modules)
	size := n * pixelsPerModule
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	for y := 0; y < size; y++ {
		row := q.Modules[y/pixelsPerModule]
		for x := 0; x < size; x++ {
			if row[x/pixelsPerModule] {
				img.Pix[img.PixOffset(x, y)] = 1
			}
		}
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img); err != nil {
		return nil, fmt.Errorf("encode QR PNG: %w", err)
	}
	return b.Bytes(), nil
}
