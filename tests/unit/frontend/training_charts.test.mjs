import { test } from "node:test";
import assert from "node:assert/strict";
import { trainingFromHistory, trainingSummary, measureName, domainOf } from "../../../frontend/static/frontend/js/training_charts.js";

test("a running job's history becomes loss and validation curves", () => {
  const history = [{ stage: "prepare", fraction: 1, train_images: 10 }];
  for (let step = 1; step <= 25; step++) {
    const point = { stage: "train", fraction: step / 100, step, epoch: step / 5, loss: 10 - step * 0.1 };
    if (step >= 10) point.val_pixel_f1_max = step >= 20 ? 0.6 : 0.4;
    history.push(point);
  }
  const t = trainingFromHistory(history, { window: 10 });
  assert.equal(t.steps, 25);
  assert.equal(t.measure, "val_pixel_f1_max");
  assert.deepEqual(t.curves.train_loss.map((p) => p[0]), [10, 20, 25]);
  assert.ok(Math.abs(t.curves.train_loss[0][1] - 9.45) < 1e-9);  // mean of steps 1..10
  assert.deepEqual(t.curves.validation, [[10, 0.4], [20, 0.6]]);  // one point per new validation
  assert.equal(trainingFromHistory([{ stage: "features", fraction: 0.5 }]), null);
});

test("the summary says steps, epochs, why it stopped and the restored best", () => {
  const text = trainingSummary({ steps: 420, epochs: 30, seconds: 61.4, stopped: "early stop", measure: "val_loss",
    best_value: 0.012345, best_step: 300, validation: "held back" });
  assert.match(text, /420 steps \(30\.0 epochs\)/);
  assert.match(text, /61 s/);
  assert.match(text, /stopped: early stop/);
  assert.match(text, /best validation loss 0\.01235 at step 300 \(weights restored\)/);
  assert.match(text, /validation images: held back/);
  assert.equal(measureName("val_pixel_f1_max"), "validation pixel F1-max");
  assert.deepEqual(domainOf([2, 2]), [1.5, 2.5]);
});
