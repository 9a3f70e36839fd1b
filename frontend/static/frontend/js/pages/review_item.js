// A review-queue entry (a prediction as GET /api/projects/{id}/review-queue/ returns it)
// flattened to what the viewer draws. Pure, tested in node.

export function queueItem(raw) {
  return {
    predictionId: raw.id,
    imageId: raw.image.id,
    name: raw.image.original_name,
    width: raw.image.width,
    height: raw.image.height,
    imageUrl: raw.image.file_url,
    score: raw.score,
    flagged: raw.flagged,
    // The heatmap PNG's levels 0..255 stand for map values min..max.
    vmin: raw.heatmap_range.min,
    vmax: raw.heatmap_range.max,
    heatmapUrl: raw.heatmap_url,
    classMapUrl: raw.class_map_url ?? null, // road-scene models: the predicted class map
    threshold: raw.threshold, // image threshold: flags the image
    regionThreshold: raw.region_threshold ?? raw.threshold, // region threshold: outlines pixels
    modelId: raw.model_version.id,
    modelNumber: raw.model_version.number,
    pipeline: raw.model_version.pipeline,
    verdict: raw.verdict ?? null,
    // Rail projects: the rail mask the model found and its anomalous patches (image pixels).
    classMaskUrl: raw.class_mask_url ?? null,
    boxes: raw.boxes ?? [],
    comment: "",
  };
}
