"""Make the audio front end's reference fixture: worker/tests/fixtures/audio/.

The references come from outside Wick: the clip from espeak-ng, the log-mel spectrogram from
Hugging Face transformers' `WhisperFeatureExtractor` (its numpy path, which needs no torch:
`pip install numpy transformers`), and the 16 kHz resampling from the windowed-sinc filter
written out below in numpy. Nothing here calls Wick.

Steps, all deterministic:
1. `espeak-ng -w speech.wav SENTENCE` (Debian `apt-get install espeak-ng`; 22050 Hz, 16-bit
   mono PCM, about 2.2 s).
2. Resample it to 16 kHz with a band-limited interpolator: output sample i (time i/16000 s) is
   sum_n x[n] * h(i*22050/16000 - n), where h is a sinc low-pass with its cutoff at
   CUTOFF_HZ (7950 Hz), windowed by a Kaiser window (beta 12) over +-HALF_WIDTH (256) input
   samples: close to an ideal band limit at 8 kHz. The clip is zero outside its ends; the output
   has round(len * 16000 / 22050) samples. This is not the resampler the worker uses (rubato's
   FFT resampler), so the two agree only up to their filters' differences near 8 kHz, which
   reach the top mel bin (about 7.4-8 kHz). How much depends on this reference's cutoff: with
   7600 Hz (beta 10, 64 samples) the worker's log-mel differed by up to 0.36 in bin 79 and 7e-3
   in the other bins; with 7950 Hz, by up to 0.13 in bin 79 and 5e-5 elsewhere.
3. `WhisperFeatureExtractor()(pcm16k, sampling_rate=16000)` pads to 30 s and returns the
   [80, 3000] log-mel features; the first FRAMES frames of each bin are kept.

Writes (little-endian float32 raw arrays):
- `speech.wav` the espeak-ng clip as espeak wrote it;
- `speech_16k.f32` the 16 kHz PCM of step 2 (the input the reference log-mel saw);
- `logmel_80xN.f32` the reference features [80, FRAMES], row-major (bin-major);
- `meta.json` sentence, lengths, the reference's max of log10(mel) over the whole padded clip
  (before the max-8 clamp), and a few values of the reference mel filterbank [201, 80].

Run from the repository root: `python3 scripts/make_audio_fixture.py`.
"""

import json
import os
import subprocess
import tempfile
import wave

import numpy as np
from transformers import WhisperFeatureExtractor

SENTENCE = "Speech recognition runs in the browser."
OUT = os.path.join("worker", "tests", "fixtures", "audio")
TARGET_RATE = 16000
CUTOFF_HZ = 7950.0  # just under the output Nyquist frequency: a near-ideal band limit
HALF_WIDTH = 256  # input samples each side of the interpolated point
KAISER_BETA = 12.0


def speak(sentence: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.wav")
        subprocess.run(["espeak-ng", "-w", path, sentence], check=True)
        with open(path, "rb") as f:
            return f.read()


def read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, "espeak-ng writes 16-bit mono"
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float64) / 32768.0, rate


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Kaiser-windowed sinc interpolation, evaluated at every output time, in float64."""
    n_out = int(round(len(x) * rate_out / rate_in))
    fc = CUTOFF_HZ / rate_in  # cutoff in cycles per input sample
    out = np.zeros(n_out)
    for i in range(n_out):
        t = i * rate_in / rate_out  # position in input samples
        lo = max(int(np.floor(t)) - HALF_WIDTH + 1, 0)
        hi = min(int(np.floor(t)) + HALF_WIDTH, len(x) - 1)
        if hi < lo:
            continue
        n = np.arange(lo, hi + 1)
        d = t - n
        h = 2 * fc * np.sinc(2 * fc * d)
        w = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (d / HALF_WIDTH) ** 2, 0, 1))) / np.i0(KAISER_BETA)
        out[i] = np.dot(x[lo : hi + 1], h * w)
    return out


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    wav_bytes = speak(SENTENCE)
    wav_path = os.path.join(OUT, "speech.wav")
    with open(wav_path, "wb") as f:
        f.write(wav_bytes)
    x, rate = read_wav(wav_path)

    pcm = resample(x, rate, TARGET_RATE).astype(np.float32)
    pcm.astype("<f4").tofile(os.path.join(OUT, "speech_16k.f32"))

    fe = WhisperFeatureExtractor()
    feats = fe(pcm, sampling_rate=TARGET_RATE, return_tensors="np")["input_features"][0]
    assert feats.shape == (80, 3000), feats.shape
    # The clamp threshold: max of log10(mel) = 4 * max(features) - 4 (the max survives the clamp).
    log_max = float(4.0 * feats.max() - 4.0)
    frames = int(np.ceil(len(pcm) / 160)) + 8  # the speech plus a few frames of padding
    np.ascontiguousarray(feats[:, :frames]).astype("<f4").tofile(
        os.path.join(OUT, f"logmel_80x{frames}.f32")
    )

    filters = fe.mel_filters  # [201, 80], Slaney scale and area normalisation
    picks = {}
    for m in (0, 1, 40, 79):
        nz = np.nonzero(filters[:, m])[0]
        picks[str(m)] = {"bins": nz.tolist(), "values": filters[nz, m].tolist()}

    meta = {
        "sentence": SENTENCE,
        "espeak": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip(),
        "transformers": __import__("transformers").__version__,
        "wav_rate": rate,
        "wav_samples": len(x),
        "pcm16k_samples": len(pcm),
        "frames": frames,
        "logmel_file": f"logmel_80x{frames}.f32",
        "log10_max": log_max,
        "resampler": {"cutoff_hz": CUTOFF_HZ, "half_width": HALF_WIDTH, "kaiser_beta": KAISER_BETA},
        "mel_filters": picks,
    }
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(json.dumps({k: v for k, v in meta.items() if k != "mel_filters"}, indent=1))


if __name__ == "__main__":
    main()
