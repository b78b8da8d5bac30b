// The microphone's samples, as they come: each 128-sample block of the first channel is posted
// to the page, which keeps them until Stop. Raw PCM, so no codec stands between the microphone
// and the model.
class Recorder extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0]?.[0];
    if (channel) this.port.postMessage(channel.slice());
    return true;
  }
}
registerProcessor('wick-recorder', Recorder);
