WITH ls_events AS (
  SELECT
    `e`.`lead_id`,
    `e`.`type`,
    `e`.`ts_us`,
    `e`.`prop_url`
  FROM events AS e
  LEFT JOIN (
    SELECT
      `d`.`event_id`,
      MIN(`d`.`seq`) AS first_seq
    FROM events AS d
    WHERE
      NOT `d`.`event_id` IS NULL
    GROUP BY
      `d`.`event_id`
    HAVING
      COUNT(*) > 1
  ) AS f
    ON `f`.`event_id` = `e`.`event_id`
  WHERE
    `e`.`ts_us` <= 1772323200000000
    AND `e`.`type` IN ('page_view', 'webinar', 'demo', 'email_open')
    AND (
      `f`.`first_seq` IS NULL OR `e`.`seq` = `f`.`first_seq`
    )
), ls_ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY `e`.`lead_id`, IF(
        `e`.`type` = 'page_view' AND `e`.`ts_us` >= 1764547200000000,
        NOT `e`.`prop_url` IS NULL
        AND COALESCE(
          LOCATE('/pricing', LOWER(TRIM(BOTH ' \t\n\r\014\013' FROM `e`.`prop_url`))) > 0,
          FALSE
        ),
        FALSE
      )
      ORDER BY `e`.`ts_us` DESC
    ) AS `rank0`
  FROM ls_events AS e
), ls_agg AS (
  SELECT
    `e`.`lead_id`,
    SUM(
      CAST(15.0 AS DOUBLE) * POWER(
        CAST(0.5 AS DOUBLE),
        (
          CAST((
            1772323200000000 - `e`.`ts_us`
          ) AS DOUBLE) / CAST(86400000000.0 AS DOUBLE)
        ) / CAST(30.0 AS DOUBLE)
      )
    ) FILTER(WHERE
      IF(
        `e`.`type` = 'page_view' AND `e`.`ts_us` >= 1764547200000000,
        NOT `e`.`prop_url` IS NULL
        AND COALESCE(
          LOCATE('/pricing', LOWER(TRIM(BOTH ' \t\n\r\014\013' FROM `e`.`prop_url`))) > 0,
          FALSE
        ),
        FALSE
      )
      AND `e`.`rank0` <= 3) AS `x0`,
    MAX(`e`.`ts_us`) FILTER(WHERE
      `e`.`type` IN ('webinar', 'demo')) AS `x1`,
    COUNT(*) FILTER(WHERE
      `e`.`type` IN ('webinar', 'demo')) AS `x2`,
    COUNT(*) FILTER(WHERE
      `e`.`type` = 'email_open' AND `e`.`ts_us` >= 1769731200000000) AS `x3`
  FROM ls_ranked AS e
  GROUP BY
    `e`.`lead_id`
), ls_rules AS (
  SELECT
    `l`.`lead_id`,
    IF(
      NOT `l`.`attr_job_title` IS NULL
      AND COALESCE(`l`.`attr_job_title` RLIKE '(?iu)\\A((?:vp|chief))', FALSE),
      CAST(20.0 AS DOUBLE),
      CAST(0.0 AS DOUBLE)
    ) AS `r0`,
    IF(
      NOT `l`.`attr_employees` IS NULL
      AND COALESCE(
        CASE
          WHEN `l`.`attr_employees` RLIKE '^[ \\t\\n\\r\\f\\v]*[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?[ \\t\\n\\r\\f\\v]*$'
          AND ABS(CAST(`l`.`attr_employees` AS DOUBLE)) <= CAST(1.7976931348623157e+308 AS DOUBLE)
          THEN CAST(`l`.`attr_employees` AS DOUBLE)
        END BETWEEN CAST(50.0 AS DOUBLE) AND CAST(500.0 AS DOUBLE),
        FALSE
      ),
      CAST(10.0 AS DOUBLE),
      CAST(0.0 AS DOUBLE)
    ) AS `r1`,
    IF(
      (
        NOT `l`.`attr_country` IS NULL
        AND COALESCE(
          COALESCE(LOWER(TRIM(BOTH ' \t\n\r\014\013' FROM `l`.`attr_country`)) IN ('vn', 'de'), FALSE)
          OR COALESCE(
            CASE
              WHEN `l`.`attr_country` RLIKE '^[ \\t\\n\\r\\f\\v]*[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?[ \\t\\n\\r\\f\\v]*$'
              AND ABS(CAST(`l`.`attr_country` AS DOUBLE)) <= CAST(1.7976931348623157e+308 AS DOUBLE)
              THEN CAST(`l`.`attr_country` AS DOUBLE)
            END IN (CAST(7.0 AS DOUBLE)),
            FALSE
          ),
          FALSE
        )
      )
      OR NOT (
        NOT `l`.`attr_country` IS NULL
      ),
      CAST(5.0 AS DOUBLE),
      CAST(0.0 AS DOUBLE)
    ) AS `r2`,
    COALESCE(`a`.`x0`, CAST(0.0 AS DOUBLE)) AS `r3`,
    IF(
      COALESCE(`a`.`x2`, 0) >= 2,
      CAST(20.0 AS DOUBLE) * POWER(
        CAST(0.5 AS DOUBLE),
        (
          CAST((
            1772323200000000 - `a`.`x1`
          ) AS DOUBLE) / CAST(86400000000.0 AS DOUBLE)
        ) / CAST(60.0 AS DOUBLE)
      ),
      CAST(0.0 AS DOUBLE)
    ) AS `r4`,
    IF(
      NOT (
        NOT `l`.`created_us` IS NULL AND `l`.`created_us` >= 1769731200000001
      )
      AND COALESCE(`a`.`x3`, 0) = 0,
      CAST(-10.0 AS DOUBLE),
      CAST(0.0 AS DOUBLE)
    ) AS `r5`
  FROM leads AS l
  LEFT JOIN ls_agg AS a
    ON `a`.`lead_id` = `l`.`lead_id`
), ls_groups AS (
  SELECT
    `r`.`lead_id`,
    LEAST(CAST(0.0 AS DOUBLE) + `r`.`r0` + `r`.`r1` + `r`.`r2`, CAST(50.0 AS DOUBLE)) AS `g0`,
    GREATEST(CAST(0.0 AS DOUBLE) + `r`.`r3` + `r`.`r4` + `r`.`r5`, CAST(-20.0 AS DOUBLE)) AS `g1`
  FROM ls_rules AS r
), ls_totals AS (
  SELECT
    `s`.`lead_id`,
    `s`.`g0`,
    `s`.`g1`,
    LEAST(
      GREATEST(CAST(0.0 AS DOUBLE) + `s`.`g0` + `s`.`g1`, CAST(0.0 AS DOUBLE)),
      CAST(100.0 AS DOUBLE)
    ) AS `total`
  FROM ls_groups AS s
)
SELECT
  `t`.`lead_id`,
  `t`.`total` AS `score`,
  CASE
    WHEN `t`.`total` >= CAST(50.0 AS DOUBLE)
    THEN 'Hot'
    WHEN `t`.`total` >= CAST(0.0 AS DOUBLE)
    THEN 'Cold'
  END AS `stage`,
  `t`.`g0` AS `score_fit`,
  `t`.`g1` AS `score_engagement`,
  CASE
    WHEN `t`.`g0` >= CAST(30.0 AS DOUBLE)
    THEN 'A'
    WHEN `t`.`g0` >= CAST(10.0 AS DOUBLE)
    THEN 'B'
  END AS `grade_fit`
FROM ls_totals AS t
