"""The feature contract shared by every stage (example builder, schema, Transform, model, serving).

One place names each feature, its dtype and its shape; a feature renamed here is renamed
everywhere. Three layers of the same data:

1. Raw log (``RAW_*``): CSV columns every importer writes (see README "Raw-log layout").
2. ``tf.Example`` features (``EXAMPLE_*``): one example per exposure, built by the Beam
   example builder; ids are strings so string and integer ids from any source look the same.
3. Transformed features (``MODEL_*``): what the Keras model reads after Transform. Video ids are
   vocabulary indices shifted by one so that ``PAD_ID = 0`` means "no item" in padded histories.
"""

# --- 1. Raw interaction log -------------------------------------------------------------------
RAW_INTERACTIONS_FILE = "interactions.csv"
RAW_USER_ID = "user_id"
RAW_VIDEO_ID = "video_id"
RAW_TIMESTAMP = "timestamp"
RAW_CLICK = "click"
RAW_CATEGORY = "category"  # optional column
RAW_SPLIT = "split"  # optional column: "train"/"eval" when the source provides a split
RAW_REQUIRED_COLUMNS = (RAW_USER_ID, RAW_VIDEO_ID, RAW_TIMESTAMP, RAW_CLICK)
RAW_OPTIONAL_COLUMNS = (RAW_CATEGORY, RAW_SPLIT)
# Optional video-feature table: video_features.npy (float32 [V, F]) + video_feature_ids.txt
# (one video id per line, row-aligned with the matrix).
RAW_VIDEO_FEATURES_FILE = "video_features.npy"
RAW_VIDEO_FEATURE_IDS_FILE = "video_feature_ids.txt"

# --- 2. tf.Example features (one per exposure) ----------------------------------------------
USER_ID = "user_id"  # bytes, scalar
VIDEO_ID = "video_id"  # bytes, scalar: the target (exposed) video
LABEL = "label"  # int64, scalar, 0/1 click
TIMESTAMP = "timestamp"  # int64, scalar
CLICK_HISTORY = "click_history"  # bytes list, oldest -> newest, <= max_history, strictly before
NONCLICK_HISTORY = "nonclick_history"  # bytes list, exposed-not-clicked, same rules
CATEGORY = "category"  # bytes, scalar, optional
# int64 scalars: the user's clicks / non-clicks before the exposure, from the same exposures as the
# histories but never cut to max_history (the user's click rate survives the cut).
CLICK_COUNT = "click_count"
NONCLICK_COUNT = "nonclick_count"
# int64 scalar: clicks among the user's latest RECENT_WINDOW exposures before this one (the same
# exposures as the histories): a user's recent click rate drifts away from the lifetime one.
RECENT_CLICK_COUNT = "recent_click_count"
RECENT_WINDOW = 10
HISTORY_COUNT_FEATURES = (CLICK_COUNT, NONCLICK_COUNT, RECENT_CLICK_COUNT)
HISTORY_FEATURES = (CLICK_HISTORY, NONCLICK_HISTORY)
SCALAR_BYTES_FEATURES = (USER_ID, VIDEO_ID)
SCALAR_INT_FEATURES = (LABEL, TIMESTAMP)

# --- 3. Transformed (model) features --------------------------------------------------------
PAD_ID = 0  # history padding; real video indices are >= 1
MODEL_USER = "user_index"  # int64 [B]: hashed user id (groups rows for L_cui, Eq 15)
MODEL_TARGET = "video_index"  # int64 [B]
MODEL_CLICK_HISTORY = "click_history_index"  # int64 [B, N], PAD_ID-padded on the right
MODEL_NONCLICK_HISTORY = "nonclick_history_index"  # int64 [B, N], PAD_ID-padded on the right
MODEL_LABEL = LABEL  # float32 [B] after Transform
MODEL_TIMESTAMP = TIMESTAMP  # int64 [B]: orders a user's rows (the Trainer's validation split)
# float32 [B]: max(CLICK_COUNT, real click-history items), so a request without counts falls back
# to the lengths of the histories it sends.
MODEL_CLICK_COUNT = "history_click_count"
MODEL_NONCLICK_COUNT = "history_nonclick_count"
# float32 [B]: RECENT_CLICK_COUNT, clipped to the window; a request without it gets the share of
# the window that the lifetime click rate predicts (`preprocessing_fn`).
MODEL_RECENT_CLICK_COUNT = "history_recent_click_count"

DEFAULT_MAX_HISTORY = 160  # the paper's (THACIL's) MAX_LENGTH
# Optional pre-computed user-interest vectors (§4.1; CCL4RecConfig.num_interest_vectors > 0).
MODEL_INTEREST_VECTORS = "interest_vectors"  # float32 [B, K, F]

# --- Slicing features (tf.Example only; read by the Evaluator, ignored by Transform) -------------
# Buckets of the user's number of training exposures and of the target video's number of training
# exposures, e.g. b"010-049"; computed by the example builder over the train split.
USER_ACTIVITY_BUCKET = "user_activity_bucket"
VIDEO_POPULARITY_BUCKET = "video_popularity_bucket"
SLICE_FEATURES = (USER_ACTIVITY_BUCKET, VIDEO_POPULARITY_BUCKET)
# Query key "<user_id>|<video popularity bucket>": TFMA computes a query metric on a slice over the
# whole query of every user present in it, so per-user rankings *within* a video-popularity bucket
# need a query that stays inside the bucket.
USER_IN_VIDEO_BUCKET = "user_in_video_popularity_bucket"
ACTIVITY_BUCKET_EDGES = (10, 50, 200)  # -> "000-009", "010-049", "050-199", "200+"
POPULARITY_BUCKET_EDGES = (5, 50, 500)  # -> "000-004", "005-049", "050-499", "500+"


def bucket_label(count: int, edges) -> str:
    """Names the bucket of ``count`` given ascending ``edges`` (zero-padded so names sort)."""
    lower = 0
    for edge in edges:
        if count < edge:
            return f"{lower:03d}-{edge - 1:03d}"
        lower = edge
    return f"{lower}+"
