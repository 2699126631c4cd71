/* lakeforge
materialized: table
description: CRM customers, trimmed and typed, one row per customer.
checks:
  - {type: not_null, column: [customer_number, customer_name, country]}
  - {type: unique, column: customer_number}
  - {type: row_count, compare_to: bronze.crm_customers}
  - {type: row_count, source: crm.customers, severity: warn}
  - {type: expression, name: credit_limit_not_negative, expression: "credit_limit IS NULL OR credit_limit >= 0", on_fail: quarantine}
*/
select
    customernumber::integer                                as customer_number,
    trim(customername)                                     as customer_name,
    trim(contactfirstname) || ' ' || trim(contactlastname) as contact_name,
    trim(phone)                                            as phone,
    trim(addressline1)                                     as address_line1,
    nullif(trim(addressline2), '')                         as address_line2,
    trim(city)                                             as city,
    nullif(trim(state), '')                                as state,
    nullif(trim(postalcode), '')                           as postal_code,
    trim(country)                                          as country,
    salesrepemployeenumber::integer                        as sales_rep_employee_number,
    creditlimit::decimal(12, 2)                            as credit_limit
from bronze.crm_customers
qualify row_number() over (partition by customernumber order by _lf_extracted_at desc) = 1
