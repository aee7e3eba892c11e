WITH ls_events AS (
  SELECT
    "e"."lead_id",
    "e"."type",
    "e"."ts_us",
    "e"."prop_url"
  FROM events AS e
  LEFT JOIN (
    SELECT
      "d"."event_id",
      MIN("d"."seq") AS first_seq
    FROM events AS d
    WHERE
      NOT "d"."event_id" IS NULL
    GROUP BY
      "d"."event_id"
    HAVING
      COUNT(*) > 1
  ) AS f
    ON "f"."event_id" = "e"."event_id"
  WHERE
    "e"."ts_us" <= 1772323200000000
    AND "e"."type" IN ('page_view', 'webinar', 'demo', 'email_open')
    AND (
      "f"."first_seq" IS NULL OR "e"."seq" = "f"."first_seq"
    )
), ls_ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY "e"."lead_id", CASE
        WHEN "e"."type" = 'page_view' AND "e"."ts_us" >= 1764547200000000
        THEN NOT "e"."prop_url" IS NULL
        AND COALESCE(
          POSITION('/pricing' IN LOWER(TRIM(BOTH ' 	
' FROM "e"."prop_url"))) > 0,
          FALSE
        )
        ELSE FALSE
      END
      ORDER BY "e"."ts_us" DESC NULLS LAST
    ) AS "rank0"
  FROM ls_events AS e
), ls_agg AS (
  SELECT
    "e"."lead_id",
    SUM(
      CAST(15.0 AS DOUBLE PRECISION) * CASE
        WHEN (
          CAST((
            1772323200000000 - "e"."ts_us"
          ) AS DOUBLE PRECISION) / CAST(86400000000.0 AS DOUBLE PRECISION)
        ) / CAST(30.0 AS DOUBLE PRECISION) >= 990
        THEN CAST(0.0 AS DOUBLE PRECISION)
        ELSE POWER(
          CAST(0.5 AS DOUBLE PRECISION),
          (
            CAST((
              1772323200000000 - "e"."ts_us"
            ) AS DOUBLE PRECISION) / CAST(86400000000.0 AS DOUBLE PRECISION)
          ) / CAST(30.0 AS DOUBLE PRECISION)
        )
      END
    ) FILTER(WHERE
      CASE
        WHEN "e"."type" = 'page_view' AND "e"."ts_us" >= 1764547200000000
        THEN NOT "e"."prop_url" IS NULL
        AND COALESCE(
          POSITION('/pricing' IN LOWER(TRIM(BOTH ' 	
' FROM "e"."prop_url"))) > 0,
          FALSE
        )
        ELSE FALSE
      END
      AND "e"."rank0" <= 3) AS "x0",
    MAX("e"."ts_us") FILTER(WHERE
      "e"."type" IN ('webinar', 'demo')) AS "x1",
    COUNT(*) FILTER(WHERE
      "e"."type" IN ('webinar', 'demo')) AS "x2",
    COUNT(*) FILTER(WHERE
      "e"."type" = 'email_open' AND "e"."ts_us" >= 1769731200000000) AS "x3"
  FROM ls_ranked AS e
  GROUP BY
    "e"."lead_id"
), ls_rules AS MATERIALIZED (
  SELECT
    "l"."lead_id",
    CASE
      WHEN NOT "l"."attr_job_title" IS NULL
      AND COALESCE("l"."attr_job_title" ~ '(?i)^((?:vp|chief))', FALSE)
      THEN CAST(20.0 AS DOUBLE PRECISION)
      ELSE CAST(0.0 AS DOUBLE PRECISION)
    END AS "r0",
    CASE
      WHEN NOT "l"."attr_employees" IS NULL
      AND COALESCE(
        CASE
          WHEN NOT "l"."attr_employees" ~ '^[ \t\n\r\f\v]*[+-]?([0-9]{1,250}(\.[0-9]{0,250})?|\.[0-9]{1,250})([eE][+-]?[0-9]{1,3})?[ \t\n\r\f\v]*$'
          THEN NULL
          WHEN ABS(CAST("l"."attr_employees" AS DECIMAL)) > 1.7976931348623157e308
          THEN NULL
          WHEN ABS(CAST("l"."attr_employees" AS DECIMAL)) <= 2.4703282292062328e-324
          THEN CAST(0.0 AS DOUBLE PRECISION)
          ELSE CAST("l"."attr_employees" AS DOUBLE PRECISION)
        END BETWEEN CAST(50.0 AS DOUBLE PRECISION) AND CAST(500.0 AS DOUBLE PRECISION),
        FALSE
      )
      THEN CAST(10.0 AS DOUBLE PRECISION)
      ELSE CAST(0.0 AS DOUBLE PRECISION)
    END AS "r1",
    CASE
      WHEN (
        NOT "l"."attr_country" IS NULL
        AND COALESCE(
          COALESCE(
            LOWER(TRIM(BOTH ' 	
' FROM "l"."attr_country")) IN ('vn', 'de'),
            FALSE
          )
          OR COALESCE(
            CASE
              WHEN NOT "l"."attr_country" ~ '^[ \t\n\r\f\v]*[+-]?([0-9]{1,250}(\.[0-9]{0,250})?|\.[0-9]{1,250})([eE][+-]?[0-9]{1,3})?[ \t\n\r\f\v]*$'
              THEN NULL
              WHEN ABS(CAST("l"."attr_country" AS DECIMAL)) > 1.7976931348623157e308
              THEN NULL
              WHEN ABS(CAST("l"."attr_country" AS DECIMAL)) <= 2.4703282292062328e-324
              THEN CAST(0.0 AS DOUBLE PRECISION)
              ELSE CAST("l"."attr_country" AS DOUBLE PRECISION)
            END IN (CAST(7.0 AS DOUBLE PRECISION)),
            FALSE
          ),
          FALSE
        )
      )
      OR NOT (
        NOT "l"."attr_country" IS NULL
      )
      THEN CAST(5.0 AS DOUBLE PRECISION)
      ELSE CAST(0.0 AS DOUBLE PRECISION)
    END AS "r2",
    COALESCE("a"."x0", CAST(0.0 AS DOUBLE PRECISION)) AS "r3",
    CASE
      WHEN COALESCE("a"."x2", 0) >= 2
      THEN CAST(20.0 AS DOUBLE PRECISION) * CASE
        WHEN (
          CAST((
            1772323200000000 - "a"."x1"
          ) AS DOUBLE PRECISION) / CAST(86400000000.0 AS DOUBLE PRECISION)
        ) / CAST(60.0 AS DOUBLE PRECISION) >= 990
        THEN CAST(0.0 AS DOUBLE PRECISION)
        ELSE POWER(
          CAST(0.5 AS DOUBLE PRECISION),
          (
            CAST((
              1772323200000000 - "a"."x1"
            ) AS DOUBLE PRECISION) / CAST(86400000000.0 AS DOUBLE PRECISION)
          ) / CAST(60.0 AS DOUBLE PRECISION)
        )
      END
      ELSE CAST(0.0 AS DOUBLE PRECISION)
    END AS "r4",
    CASE
      WHEN NOT (
        NOT "l"."created_us" IS NULL AND "l"."created_us" >= 1769731200000001
      )
      AND COALESCE("a"."x3", 0) = 0
      THEN CAST(-10.0 AS DOUBLE PRECISION)
      ELSE CAST(0.0 AS DOUBLE PRECISION)
    END AS "r5"
  FROM leads AS l
  LEFT JOIN ls_agg AS a
    ON "a"."lead_id" = "l"."lead_id"
), ls_groups AS (
  SELECT
    "r"."lead_id",
    LEAST(
      CAST(0.0 AS DOUBLE PRECISION) + "r"."r0" + "r"."r1" + "r"."r2",
      CAST(50.0 AS DOUBLE PRECISION)
    ) AS "g0",
    GREATEST(
      CAST(0.0 AS DOUBLE PRECISION) + "r"."r3" + "r"."r4" + "r"."r5",
      CAST(-20.0 AS DOUBLE PRECISION)
    ) AS "g1"
  FROM ls_rules AS r
), ls_totals AS (
  SELECT
    "s"."lead_id",
    "s"."g0",
    "s"."g1",
    LEAST(
      GREATEST(CAST(0.0 AS DOUBLE PRECISION) + "s"."g0" + "s"."g1", CAST(0.0 AS DOUBLE PRECISION)),
      CAST(100.0 AS DOUBLE PRECISION)
    ) AS "total"
  FROM ls_groups AS s
)
SELECT
  "t"."lead_id",
  "t"."total" AS "score",
  CASE
    WHEN "t"."total" >= CAST(50.0 AS DOUBLE PRECISION)
    THEN 'Hot'
    WHEN "t"."total" >= CAST(0.0 AS DOUBLE PRECISION)
    THEN 'Cold'
  END AS "stage",
  "t"."g0" AS "score_fit",
  "t"."g1" AS "score_engagement",
  CASE
    WHEN "t"."g0" >= CAST(30.0 AS DOUBLE PRECISION)
    THEN 'A'
    WHEN "t"."g0" >= CAST(10.0 AS DOUBLE PRECISION)
    THEN 'B'
  END AS "grade_fit"
FROM ls_totals AS t
