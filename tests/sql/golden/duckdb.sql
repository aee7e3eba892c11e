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
), ls_agg AS (
  SELECT
    "e"."lead_id",
    MAX("e"."ts_us", 3) FILTER(WHERE
      CASE
        WHEN "e"."type" = 'page_view' AND "e"."ts_us" >= 1764547200000000
        THEN NOT "e"."prop_url" IS NULL
        AND COALESCE(
          STRPOS(
            CASE
              WHEN LEFT("e"."prop_url", 1) > ' ' AND RIGHT("e"."prop_url", 1) > ' '
              THEN LOWER("e"."prop_url")
              ELSE LOWER(TRIM("e"."prop_url", ' 	
'))
            END,
            '/pricing'
          ) > 0,
          FALSE
        )
        ELSE FALSE
      END) AS "x0",
    MAX("e"."ts_us") FILTER(WHERE
      "e"."type" IN ('webinar', 'demo')) AS "x1",
    COUNT(*) FILTER(WHERE
      "e"."type" IN ('webinar', 'demo')) AS "x2",
    COUNT(*) FILTER(WHERE
      "e"."type" = 'email_open' AND "e"."ts_us" >= 1769731200000000) AS "x3"
  FROM ls_events AS e
  GROUP BY
    "e"."lead_id"
), ls_rules AS MATERIALIZED (
  SELECT
    "l"."lead_id",
    CASE
      WHEN NOT "l"."attr_job_title" IS NULL
      AND COALESCE(REGEXP_MATCHES("l"."attr_job_title", '(?i)^((?:vp|chief))'), FALSE)
      THEN CAST(20.0 AS DOUBLE)
      ELSE CAST(0.0 AS DOUBLE)
    END AS "r0",
    CASE
      WHEN NOT "l"."attr_employees" IS NULL
      AND COALESCE(
        CASE
          WHEN REGEXP_FULL_MATCH(
            "l"."attr_employees",
            '[ \t\n\r\f\v]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*'
          )
          AND ABS(TRY_CAST("l"."attr_employees" AS DOUBLE)) <= CAST(1.7976931348623157e+308 AS DOUBLE)
          THEN TRY_CAST("l"."attr_employees" AS DOUBLE)
        END BETWEEN CAST(50.0 AS DOUBLE) AND CAST(500.0 AS DOUBLE),
        FALSE
      )
      THEN CAST(10.0 AS DOUBLE)
      ELSE CAST(0.0 AS DOUBLE)
    END AS "r1",
    CASE
      WHEN (
        NOT "l"."attr_country" IS NULL
        AND COALESCE(
          COALESCE(
            CASE
              WHEN LEFT("l"."attr_country", 1) > ' ' AND RIGHT("l"."attr_country", 1) > ' '
              THEN LOWER("l"."attr_country")
              ELSE LOWER(TRIM("l"."attr_country", ' 	
'))
            END IN ('vn', 'de'),
            FALSE
          )
          OR COALESCE(
            CASE
              WHEN REGEXP_FULL_MATCH(
                "l"."attr_country",
                '[ \t\n\r\f\v]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*'
              )
              AND ABS(TRY_CAST("l"."attr_country" AS DOUBLE)) <= CAST(1.7976931348623157e+308 AS DOUBLE)
              THEN TRY_CAST("l"."attr_country" AS DOUBLE)
            END IN (CAST(7.0 AS DOUBLE)),
            FALSE
          ),
          FALSE
        )
      )
      OR NOT (
        NOT "l"."attr_country" IS NULL
      )
      THEN CAST(5.0 AS DOUBLE)
      ELSE CAST(0.0 AS DOUBLE)
    END AS "r2",
    COALESCE(
      LIST_SUM(
        LIST_TRANSFORM(
          "a"."x0",
          LAMBDA t : CAST(15.0 AS DOUBLE) * POWER(
            CAST(0.5 AS DOUBLE),
            (
              CAST((
                1772323200000000 - t
              ) AS DOUBLE) / CAST(86400000000.0 AS DOUBLE)
            ) / CAST(30.0 AS DOUBLE)
          )
        )
      ),
      CAST(0.0 AS DOUBLE)
    ) AS "r3",
    CASE
      WHEN COALESCE("a"."x2", 0) >= 2
      THEN CAST(20.0 AS DOUBLE) * POWER(
        CAST(0.5 AS DOUBLE),
        (
          CAST((
            1772323200000000 - "a"."x1"
          ) AS DOUBLE) / CAST(86400000000.0 AS DOUBLE)
        ) / CAST(60.0 AS DOUBLE)
      )
      ELSE CAST(0.0 AS DOUBLE)
    END AS "r4",
    CASE
      WHEN NOT (
        NOT "l"."created_us" IS NULL AND "l"."created_us" >= 1769731200000001
      )
      AND COALESCE("a"."x3", 0) = 0
      THEN CAST(-10.0 AS DOUBLE)
      ELSE CAST(0.0 AS DOUBLE)
    END AS "r5"
  FROM leads AS l
  LEFT JOIN ls_agg AS a
    ON "a"."lead_id" = "l"."lead_id"
), ls_groups AS (
  SELECT
    "r"."lead_id",
    CASE
      WHEN (
        CAST(0.0 AS DOUBLE) + "r"."r0" + "r"."r1" + "r"."r2"
      ) IS NULL
      OR CAST(50.0 AS DOUBLE) IS NULL
      THEN NULL
      ELSE LEAST(CAST(0.0 AS DOUBLE) + "r"."r0" + "r"."r1" + "r"."r2", CAST(50.0 AS DOUBLE))
    END AS "g0",
    CASE
      WHEN (
        CAST(0.0 AS DOUBLE) + "r"."r3" + "r"."r4" + "r"."r5"
      ) IS NULL
      OR CAST(-20.0 AS DOUBLE) IS NULL
      THEN NULL
      ELSE GREATEST(CAST(0.0 AS DOUBLE) + "r"."r3" + "r"."r4" + "r"."r5", CAST(-20.0 AS DOUBLE))
    END AS "g1"
  FROM ls_rules AS r
), ls_totals AS (
  SELECT
    "s"."lead_id",
    "s"."g0",
    "s"."g1",
    CASE
      WHEN CASE
        WHEN (
          CAST(0.0 AS DOUBLE) + "s"."g0" + "s"."g1"
        ) IS NULL
        OR CAST(0.0 AS DOUBLE) IS NULL
        THEN NULL
        ELSE GREATEST(CAST(0.0 AS DOUBLE) + "s"."g0" + "s"."g1", CAST(0.0 AS DOUBLE))
      END IS NULL
      OR CAST(100.0 AS DOUBLE) IS NULL
      THEN NULL
      ELSE LEAST(
        CASE
          WHEN (
            CAST(0.0 AS DOUBLE) + "s"."g0" + "s"."g1"
          ) IS NULL
          OR CAST(0.0 AS DOUBLE) IS NULL
          THEN NULL
          ELSE GREATEST(CAST(0.0 AS DOUBLE) + "s"."g0" + "s"."g1", CAST(0.0 AS DOUBLE))
        END,
        CAST(100.0 AS DOUBLE)
      )
    END AS "total"
  FROM ls_groups AS s
)
SELECT
  "t"."lead_id",
  "t"."total" AS "score",
  CASE
    WHEN "t"."total" >= CAST(50.0 AS DOUBLE)
    THEN 'Hot'
    WHEN "t"."total" >= CAST(0.0 AS DOUBLE)
    THEN 'Cold'
  END AS "stage",
  "t"."g0" AS "score_fit",
  "t"."g1" AS "score_engagement",
  CASE
    WHEN "t"."g0" >= CAST(30.0 AS DOUBLE)
    THEN 'A'
    WHEN "t"."g0" >= CAST(10.0 AS DOUBLE)
    THEN 'B'
  END AS "grade_fit"
FROM ls_totals AS t
